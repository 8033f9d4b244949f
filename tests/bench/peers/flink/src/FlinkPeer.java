package weir.bench;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.KafkaSinkBuilder;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Flink peer of `make bench` (docs/benchmarks.md): the jobs of weir's
 * contenders (4) filter-transform and (5)/(6) tumbling-count on Flink 2.2 in
 * a local MiniCluster (default parallelism: the CPU count), checkpointing
 * every 1 s into a folder, KafkaSource (offsets committed to the group on
 * each checkpoint) and KafkaSink AT_LEAST_ONCE, or EXACTLY_ONCE with a
 * transactional id prefix for tumbling-eos.
 */
public final class FlinkPeer {
  static final java.util.concurrent.atomic.AtomicLong LATE = new java.util.concurrent.atomic.AtomicLong();

  /** Key and value of a Kafka record. */
  static final class KeyValueBytes implements KafkaRecordDeserializationSchema<Tuple2<byte[], byte[]>> {
    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> r, Collector<Tuple2<byte[], byte[]>> out) {
      out.collect(Tuple2.of(r.key(), r.value()));
    }

    @Override
    public TypeInformation<Tuple2<byte[], byte[]>> getProducedType() {
      return Types.TUPLE(Types.PRIMITIVE_ARRAY(Types.BYTE), Types.PRIMITIVE_ARRAY(Types.BYTE));
    }
  }

  /** (page, ts, price) of a record, parsed once in the source; dropped when a field is missing. */
  static final class Events implements KafkaRecordDeserializationSchema<Tuple3<String, Long, Double>> {
    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> r, Collector<Tuple3<String, Long, Double>> out) {
      Peer.Event e = Peer.event(r.value());
      if (e != null) {
        out.collect(Tuple3.of(e.page, e.ts, e.price));
      }
    }

    @Override
    public TypeInformation<Tuple3<String, Long, Double>> getProducedType() {
      return Types.TUPLE(Types.STRING, Types.LONG, Types.DOUBLE);
    }
  }

  static final class FilterTransform implements FlatMapFunction<Tuple2<byte[], byte[]>, Tuple2<byte[], byte[]>> {
    @Override
    public void flatMap(Tuple2<byte[], byte[]> r, Collector<Tuple2<byte[], byte[]>> out) {
      Peer.countIn();
      byte[] v = Peer.filterTransform(r.f1);
      if (v != null) {
        out.collect(Tuple2.of(r.f0, v));
      }
    }
  }

  /** views: count(), revenue: sum(price). */
  static final class CountSum implements AggregateFunction<Tuple3<String, Long, Double>, Tuple2<Long, Double>, Tuple2<Long, Double>> {
    @Override
    public Tuple2<Long, Double> createAccumulator() {
      return Tuple2.of(0L, 0.0);
    }

    @Override
    public Tuple2<Long, Double> add(Tuple3<String, Long, Double> e, Tuple2<Long, Double> a) {
      Peer.countIn();
      a.f0 += 1;
      a.f1 += e.f2;
      return a;
    }

    @Override
    public Tuple2<Long, Double> getResult(Tuple2<Long, Double> a) {
      return a;
    }

    @Override
    public Tuple2<Long, Double> merge(Tuple2<Long, Double> a, Tuple2<Long, Double> b) {
      return Tuple2.of(a.f0 + b.f0, a.f1 + b.f1);
    }
  }

  /** The window result as weir writes it, keyed by the page. */
  static final class Result extends ProcessWindowFunction<Tuple2<Long, Double>, Tuple2<byte[], byte[]>, String, TimeWindow> {
    @Override
    public void process(String key, Context ctx, Iterable<Tuple2<Long, Double>> aggs, Collector<Tuple2<byte[], byte[]>> out) {
      for (Tuple2<Long, Double> a : aggs) {
        out.collect(Tuple2.of(
            key.getBytes(java.nio.charset.StandardCharsets.UTF_8),
            Peer.windowResult(key, ctx.window().getStart(), ctx.window().getEnd(), a.f0, a.f1)));
      }
    }
  }

  /** Key and value to the output topic. */
  static final class ToTopic implements KafkaRecordSerializationSchema<Tuple2<byte[], byte[]>> {
    final String topic;

    ToTopic(String topic) {
      this.topic = topic;
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(Tuple2<byte[], byte[]> r, KafkaSinkContext ctx, Long ts) {
      return new ProducerRecord<>(topic, null, ts, r.f0, r.f1);
    }
  }

  public static void main(String[] args) throws Exception {
    Peer peer = Peer.parse(args);
    Map<String, String> conf = new HashMap<>();
    conf.put("state.checkpoint-storage", "filesystem");
    conf.put("execution.checkpointing.dir", "file://" + peer.dir + "/flink-checkpoints");
    conf.put("execution.checkpointing.savepoint-dir", "file://" + peer.dir + "/flink-savepoints");
    // A failure ends the run (and shows in the bench) instead of restarting the job.
    conf.put("restart-strategy.type", "none");
    StreamExecutionEnvironment env =
        StreamExecutionEnvironment.createLocalEnvironment(Configuration.fromMap(conf));
    env.enableCheckpointing(1000,
        peer.exactlyOnce() ? CheckpointingMode.EXACTLY_ONCE : CheckpointingMode.AT_LEAST_ONCE);

    KafkaSinkBuilder<Tuple2<byte[], byte[]>> sink = KafkaSink.<Tuple2<byte[], byte[]>>builder()
        .setBootstrapServers(peer.bootstrap)
        .setRecordSerializer(new ToTopic(peer.output));
    if (peer.exactlyOnce()) {
      sink.setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
          .setTransactionalIdPrefix(peer.group)
          // Below the broker's transaction.max.timeout.ms (15 min).
          .setProperty("transaction.timeout.ms", "60000");
    } else {
      sink.setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE);
    }

    DataStream<Tuple2<byte[], byte[]>> out;
    switch (peer.job) {
      case "filter-transform" -> {
        KafkaSource<Tuple2<byte[], byte[]>> src = KafkaSource.<Tuple2<byte[], byte[]>>builder()
            .setBootstrapServers(peer.bootstrap)
            .setTopics(peer.input)
            .setGroupId(peer.group)
            .setStartingOffsets(OffsetsInitializer.earliest())
            .setDeserializer(new KeyValueBytes())
            .build();
        out = env.fromSource(src, WatermarkStrategy.noWatermarks(), "input")
            .flatMap(new FilterTransform())
            .returns(new KeyValueBytes().getProducedType());
      }
      case "tumbling", "tumbling-eos" -> {
        KafkaSource<Tuple3<String, Long, Double>> src = KafkaSource.<Tuple3<String, Long, Double>>builder()
            .setBootstrapServers(peer.bootstrap)
            .setTopics(peer.input)
            .setGroupId(peer.group)
            .setStartingOffsets(OffsetsInitializer.earliest())
            .setDeserializer(new Events())
            .build();
        // weir: per-partition watermark = max event time - 2 s, minimum over
        // partitions; Flink: the same per split (partition), minimum over
        // splits and channels, no idleness (every partition has data).
        WatermarkStrategy<Tuple3<String, Long, Double>> wm = WatermarkStrategy
            .<Tuple3<String, Long, Double>>forBoundedOutOfOrderness(Duration.ofSeconds(2))
            .withTimestampAssigner((e, t) -> e.f1);
        OutputTag<Tuple3<String, Long, Double>> lateTag =
            new OutputTag<>("late", Types.TUPLE(Types.STRING, Types.LONG, Types.DOUBLE));
        SingleOutputStreamOperator<Tuple2<byte[], byte[]>> results = env.fromSource(src, wm, "input")
            .keyBy(e -> e.f0, Types.STRING)
            .window(TumblingEventTimeWindows.of(Duration.ofMinutes(1)))
            .sideOutputLateData(lateTag)
            .aggregate(new CountSum(), new Result(),
                Types.TUPLE(Types.LONG, Types.DOUBLE), Types.TUPLE(Types.LONG, Types.DOUBLE),
                new KeyValueBytes().getProducedType());
        // Late records (dropped by the window) are counted in too, and apart.
        results.getSideOutput(lateTag).map(e -> {
          Peer.countIn();
          return LATE.incrementAndGet();
        }).returns(Types.LONG);
        Peer.late = LATE::get;
        out = results;
      }
      default -> throw new IllegalArgumentException("unknown job " + peer.job);
    }
    out.sinkTo(sink.build());
    JobClient job = env.executeAsync("weir-bench-" + peer.job);
    job.getJobExecutionResult().whenComplete((r, t) -> {
      if (t != null) {
        t.printStackTrace();
        Runtime.getRuntime().halt(1);
      }
    });
    peer.awaitAndReport("flink-" + peer.job, () -> {
      try {
        if (!peer.awaitCommitted(30_000)) {
          System.err.println("flink: input offsets not all committed within 30 s");
        }
        // A final savepoint: commits the source offsets and the sink's last transaction.
        String sp = job.stopWithSavepoint(false, "file://" + peer.dir + "/flink-savepoints",
            SavepointFormatType.CANONICAL).get(120, TimeUnit.SECONDS);
        System.err.println("flink: stopped with savepoint " + sp);
      } catch (Exception e) {
        throw new IllegalStateException("stop with savepoint", e);
      }
    });
  }

  private FlinkPeer() {}
}
