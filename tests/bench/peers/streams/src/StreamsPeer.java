package weir.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.api.ContextualProcessor;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.Stores;

/**
 * Kafka Streams peer of `make bench` (docs/benchmarks.md): the jobs of weir's
 * contenders (4) filter-transform, (5)/(6) tumbling-count and (16) the
 * stream-table join, with Kafka Streams' own defaults (one stream thread,
 * RocksDB state, commit every 30 s at-least-once / 100 ms exactly-once),
 * processing.guarantee at_least_once or exactly_once_v2.
 *
 * <p>Jobs: filter-transform; tumbling (at_least_once); tumbling-eos
 * (exactly_once_v2); join (at_least_once): the input re-keyed by page, with
 * the record timestamp set from its ts field, through a repartition topic of
 * 8 partitions (co-partitioned with the table topic --table=, which
 * tests/bench/pages.rs partitions as Java's default partitioner does), left
 * joined with a KTable of that topic materialized in a versioned store (an
 * hour of history, KIP-914): a versioned table join looks up the version at
 * the stream record's timestamp, the table's version time being its record
 * timestamp. The output is the input's JSON with "page_info": the table
 * value's JSON (or null) appended, spliced in as bytes (no second parse).
 * Defaults kept for the join: max.task.idle.ms 0 (the join task picks the
 * lowest-timestamp record of its two partitions and waits only for data
 * already on the broker), no stream-side grace period (Joined), no topology
 * optimization (the table has a changelog topic of its own), no record cache
 * (versioned stores have none). Records are counted in at the source, where
 * weir, which does not repartition for this join, counts them. Arguments:
 * see {@link Peer}.
 */
public final class StreamsPeer {
  /** Count and sum of one window, 16 bytes in the store. */
  static final class Agg {
    long views;
    double revenue;
  }

  static final Serde<Agg> AGG = Serdes.serdeFrom(
      (Serializer<Agg>) (topic, a) -> ByteBuffer.allocate(16).putLong(a.views).putDouble(a.revenue).array(),
      (Deserializer<Agg>) (topic, b) -> {
        if (b == null) {
          return null;
        }
        ByteBuffer bb = ByteBuffer.wrap(b);
        Agg a = new Agg();
        a.views = bb.getLong();
        a.revenue = bb.getDouble();
        return a;
      });

  public static void main(String[] args) {
    Peer peer = Peer.parse(args);
    StreamsBuilder b = new StreamsBuilder();
    KStream<byte[], byte[]> in =
        b.stream(peer.input, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()));
    switch (peer.job) {
      case "filter-transform" -> in.flatMapValues(v -> {
            Peer.countIn();
            byte[] out = Peer.filterTransform(v);
            return out == null ? List.<byte[]>of() : List.of(out);
          })
          .to(peer.output, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
      case "tumbling", "tumbling-eos" -> in
          // One JSON parse: re-key by page, value the price, record time the ts field.
          .process(() -> new ContextualProcessor<byte[], byte[], String, Double>() {
            @Override
            public void process(Record<byte[], byte[]> r) {
              Peer.Event e = Peer.event(r.value());
              if (e != null) {
                context().forward(r.withKey(e.page).withValue(e.price).withTimestamp(e.ts));
              }
            }
          })
          .repartition(Repartitioned.with(Serdes.String(), Serdes.Double()).withName("rekey"))
          // Counted after the repartition topic, as weir counts a re-keyed record in.
          .peek((k, v) -> Peer.countIn())
          .groupByKey(Grouped.with(Serdes.String(), Serdes.Double()))
          // weir: watermark = max event time - 2 s, a window closes when the
          // watermark reaches its end; Kafka Streams: grace 2 s past the end in
          // stream time (the highest timestamp seen by the task).
          .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofSeconds(2)))
          .aggregate(Agg::new, (k, price, a) -> {
            a.views += 1;
            a.revenue += price;
            return a;
          }, Materialized.with(Serdes.String(), AGG))
          // Final results only, as weir emits them. (emitStrategy(onWindowClose())
          // would be the newer way, but its first emission scans the window store
          // segment by segment from time 0: 36 s of CPU for 20,000 records here.)
          .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
          .toStream()
          .map((w, a) -> KeyValue.pair(w.key(), Peer.windowResult(
              w.key(), w.window().start(), w.window().end(), a.views, a.revenue)))
          .to(peer.output, Produced.with(Serdes.String(), Serdes.ByteArray()));
      case "join" -> {
        if (peer.table == null) {
          throw new IllegalArgumentException("job join needs --table=");
        }
        KTable<String, byte[]> pages = b.table(peer.table,
            Consumed.with(Serdes.String(), Serdes.ByteArray()),
            Materialized.<String, byte[]>as(
                    Stores.persistentVersionedKeyValueStore("pages", Duration.ofHours(1)))
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.ByteArray()));
        in
            // One JSON parse: re-key by page, record time the ts field, value unchanged.
            .process(() -> new ContextualProcessor<byte[], byte[], String, byte[]>() {
              @Override
              public void process(Record<byte[], byte[]> r) {
                Peer.countIn();
                JoinKey k = joinKey(r.value());
                if (k != null) {
                  context().forward(r.withKey(k.page).withTimestamp(k.ts));
                }
              }
            })
            // The input's partition count, as the table topic's.
            .repartition(Repartitioned.with(Serdes.String(), Serdes.ByteArray())
                .withName("rekey").withNumberOfPartitions(8))
            .leftJoin(pages, StreamsPeer::withPageInfo,
                Joined.with(Serdes.String(), Serdes.ByteArray(), Serdes.ByteArray()))
            .to(peer.output, Produced.with(Serdes.String(), Serdes.ByteArray()));
      }
      default -> throw new IllegalArgumentException("unknown job " + peer.job);
    }
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, peer.group);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, peer.bootstrap);
    p.put(StreamsConfig.STATE_DIR_CONFIG, peer.dir + "/streams-state");
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        peer.exactlyOnce() ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    KafkaStreams streams = new KafkaStreams(b.build(), p);
    streams.setUncaughtExceptionHandler(t -> {
      t.printStackTrace();
      Runtime.getRuntime().halt(1);
      return null;
    });
    streams.start();
    // Records dropped for an expired window (late in stream time), from Kafka Streams' metrics.
    Peer.late = () -> streams.metrics().values().stream()
        .filter(m -> m.metricName().name().equals("dropped-records-total")
            && m.metricName().group().equals("stream-task-metrics"))
        .mapToLong(m -> ((Number) m.metricValue()).longValue())
        .sum();
    peer.awaitAndReport("streams-" + peer.job, () -> {
      if (!streams.close(Duration.ofSeconds(60))) {
        System.err.println("streams: close timed out");
      }
    });
  }

  /** The join's lookup key and record time of one input record. */
  static final class JoinKey {
    String page;
    long ts;
  }

  /** value.page and value.ts of a payload, or null (dropped: never with the bench's input). */
  static JoinKey joinKey(byte[] payload) {
    JsonNode v;
    try {
      v = Peer.JSON.readTree(payload);
    } catch (IOException e) {
      return null;
    }
    if (v == null || !v.isObject()) {
      return null;
    }
    JsonNode page = v.get("page");
    JsonNode ts = v.get("ts");
    if (page == null || !page.isTextual() || ts == null || !ts.isIntegralNumber()) {
      return null;
    }
    JoinKey k = new JoinKey();
    k.page = page.asText();
    k.ts = ts.asLong();
    return k;
  }

  private static final byte[] PAGE_INFO = ",\"page_info\":".getBytes(StandardCharsets.UTF_8);
  private static final byte[] NULL = "null".getBytes(StandardCharsets.UTF_8);

  /**
   * The input object with "page_info": info (the table value's JSON, or null)
   * as its last field, spliced in before the closing brace.
   */
  static byte[] withPageInfo(byte[] value, byte[] info) {
    byte[] tail = info == null ? NULL : info;
    int end = value.length - 1;
    while (end > 0 && value[end] != '}') {
      end--;
    }
    int before = end - 1;
    while (before > 0 && Character.isWhitespace(value[before])) {
      before--;
    }
    // No comma after the opening brace of an empty object.
    int sep = value[before] == '{' ? 1 : 0;
    byte[] out = new byte[end + PAGE_INFO.length - sep + tail.length + 1];
    System.arraycopy(value, 0, out, 0, end);
    System.arraycopy(PAGE_INFO, sep, out, end, PAGE_INFO.length - sep);
    System.arraycopy(tail, 0, out, end + PAGE_INFO.length - sep, tail.length);
    out[out.length - 1] = '}';
    return out;
  }

  private StreamsPeer() {}

}
