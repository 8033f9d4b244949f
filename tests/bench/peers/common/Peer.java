package weir.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;

/**
 * What both peers share: the jobs' per-record logic (the same as weir's
 * pipelines and tests/bench/handwritten.rs), the arguments, and the
 * protocol with the bench driver (tests/bench/peers.rs), which is that of
 * the Rust roles (tests/bench/at_least_once.rs): once every input record is
 * in (and, for filter + transform, every expected output is in the output
 * topic), print one JSON line {"role", "records_in", "consumed",
 * "records_out", "startup_s", "steady_s"}, then wait for stdin to close,
 * stop the job cleanly (committing offsets) and exit 0.
 */
public final class Peer {
  /** Records that reached the counted stage (source for filter + transform, the window after the re-key). */
  public static final AtomicLong IN = new AtomicLong();
  /** Outputs handed to the sink (window results). */
  public static final AtomicLong OUT = new AtomicLong();
  /** System.nanoTime() of the first record counted, 0 before. */
  public static final AtomicLong FIRST = new AtomicLong();

  public static final ObjectMapper JSON = new ObjectMapper();

  /** Records dropped as late (for the report); set by the peer. */
  public static java.util.function.LongSupplier late = () -> 0;

  public final String job;
  public final String bootstrap;
  public final String input;
  public final String output;
  public final String group;
  public final long records;
  /** Output records that must be in the output topic before it is done (0: none). */
  public final long expectedOut;
  /** Folder for state, checkpoints. */
  public final String dir;
  /** Topic of the stream-table join's table (--table=, optional; only the join job reads it). */
  public final String table;
  public final long started = System.nanoTime();

  private Peer(Map<String, String> a) {
    job = need(a, "job");
    bootstrap = need(a, "bootstrap");
    input = need(a, "input");
    output = need(a, "output");
    group = need(a, "group");
    records = Long.parseLong(need(a, "records"));
    expectedOut = Long.parseLong(a.getOrDefault("expected-out", "0"));
    dir = need(a, "dir");
    table = a.get("table");
  }

  private static String need(Map<String, String> a, String k) {
    String v = a.get(k);
    if (v == null) {
      throw new IllegalArgumentException("missing --" + k + "=");
    }
    return v;
  }

  /** Parses --key=value arguments. */
  public static Peer parse(String[] args) {
    Map<String, String> a = new HashMap<>();
    for (String s : args) {
      if (s.startsWith("--") && s.contains("=")) {
        a.put(s.substring(2, s.indexOf('=')), s.substring(s.indexOf('=') + 1));
      }
    }
    return new Peer(a);
  }

  /** Counts one record in (at the stage weir counts it). */
  public static void countIn() {
    if (IN.getAndIncrement() == 0) {
      FIRST.compareAndSet(0, System.nanoTime());
    }
  }

  /** The job is exactly_once. */
  public boolean exactlyOnce() {
    return job.endsWith("-eos");
  }

  /**
   * The filter + transform of tests/bench/filter-transform.yaml and
   * tests/bench/handwritten.rs on one JSON payload: keep status == 200, output
   * {id, user, page, ts, cents} with cents = (long) (price * 100.0); null
   * when dropped (not a JSON object, other status, no numeric price).
   */
  public static byte[] filterTransform(byte[] payload) {
    JsonNode v;
    try {
      v = JSON.readTree(payload);
    } catch (IOException e) {
      return null;
    }
    if (v == null || !v.isObject()) {
      return null;
    }
    JsonNode status = v.get("status");
    if (status == null || !status.isIntegralNumber() || status.asLong() != 200) {
      return null;
    }
    JsonNode price = v.get("price");
    if (price == null || !price.isNumber()) {
      return null;
    }
    ObjectNode out = JSON.createObjectNode();
    for (String f : new String[] {"id", "user", "page", "ts"}) {
      JsonNode x = v.get(f);
      if (x != null) {
        out.set(f, x);
      }
    }
    out.put("cents", (long) (price.asDouble() * 100.0));
    try {
      return JSON.writeValueAsBytes(out);
    } catch (IOException e) {
      return null;
    }
  }

  /** One input record of the window jobs: key_by value.page, event time $.ts, sum(value.price). */
  public static final class Event {
    public String page;
    public long ts;
    public double price;
  }

  /** The fields of the window jobs, or null (dropped) when a field is missing or of the wrong type. */
  public static Event event(byte[] payload) {
    JsonNode v;
    try {
      v = JSON.readTree(payload);
    } catch (IOException e) {
      return null;
    }
    if (v == null || !v.isObject()) {
      return null;
    }
    JsonNode page = v.get("page");
    JsonNode ts = v.get("ts");
    JsonNode price = v.get("price");
    if (page == null || !page.isTextual() || ts == null || !ts.isIntegralNumber()
        || price == null || !price.isNumber()) {
      return null;
    }
    Event e = new Event();
    e.page = page.asText();
    e.ts = ts.asLong();
    e.price = price.asDouble();
    return e;
  }

  /** A window result as weir writes it: {"key", "window": {"start", "end"}, "views", "revenue"}. */
  public static byte[] windowResult(String key, long start, long end, long views, double revenue) {
    ObjectNode out = JSON.createObjectNode();
    out.put("key", key);
    ObjectNode w = out.putObject("window");
    w.put("start", start);
    w.put("end", end);
    out.put("views", views);
    out.put("revenue", revenue);
    OUT.incrementAndGet();
    try {
      return JSON.writeValueAsBytes(out);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Sum of the output topic's end offsets (read_committed ones for exactly_once). */
  private long outputEnd(Admin admin) throws Exception {
    List<TopicPartition> parts = new ArrayList<>();
    int n = admin.describeTopics(List.of(output)).allTopicNames().get().get(output).partitions().size();
    for (int p = 0; p < n; p++) {
      parts.add(new TopicPartition(output, p));
    }
    Map<TopicPartition, OffsetSpec> q = new HashMap<>();
    for (TopicPartition tp : parts) {
      q.put(tp, OffsetSpec.latest());
    }
    ListOffsetsOptions o = new ListOffsetsOptions(
        exactlyOnce() ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED);
    long sum = 0;
    for (var e : admin.listOffsets(q, o).all().get().values()) {
      sum += e.offset();
    }
    return sum;
  }

  /**
   * Waits (up to timeoutMs) until the group's committed offsets on the input
   * are at its end offsets: Flink commits them to the group after each
   * completed checkpoint, not on the final savepoint. Returns whether they got there.
   */
  public boolean awaitCommitted(long timeoutMs) throws Exception {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    long deadline = System.currentTimeMillis() + timeoutMs;
    try (Admin admin = Admin.create(p)) {
      int n = admin.describeTopics(List.of(input)).allTopicNames().get().get(input).partitions().size();
      Map<TopicPartition, OffsetSpec> q = new HashMap<>();
      for (int i = 0; i < n; i++) {
        q.put(new TopicPartition(input, i), OffsetSpec.latest());
      }
      var ends = admin.listOffsets(q).all().get();
      while (System.currentTimeMillis() < deadline) {
        var got = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        boolean all = true;
        for (var e : ends.entrySet()) {
          var c = got.get(e.getKey());
          if (c == null || c.offset() < e.getValue().offset()) {
            all = false;
          }
        }
        if (all) {
          return true;
        }
        Thread.sleep(100);
      }
    }
    return false;
  }

  /**
   * Waits until the job is done (every input record counted, every expected
   * output in the output topic), prints the result line, waits for stdin to
   * close, then runs stop. Exits the JVM.
   */
  public void awaitAndReport(String role, Runnable stop) {
    int code = 0;
    try {
      Properties p = new Properties();
      p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
      long outEnd = 0;
      try (Admin admin = Admin.create(p)) {
        while (true) {
          if (IN.get() >= records) {
            if (expectedOut == 0) {
              break;
            }
            outEnd = outputEnd(admin);
            if (outEnd >= expectedOut) {
              break;
            }
          }
          Thread.sleep(20);
        }
      }
      long done = System.nanoTime();
      long first = FIRST.get() == 0 ? done : FIRST.get();
      ObjectNode line = JSON.createObjectNode();
      line.put("role", role);
      line.put("records_in", IN.get());
      line.put("consumed", IN.get());
      line.put("records_out", expectedOut == 0 ? OUT.get() : outEnd);
      line.put("startup_s", (first - started) / 1e9);
      line.put("steady_s", (done - first) / 1e9);
      line.put("late", late.getAsLong());
      System.out.println(JSON.writeValueAsString(line));
      System.out.flush();
      InputStream in = System.in;
      while (in.read(new byte[4096]) >= 0) {
        // until the bench closes stdin
      }
      stop.run();
    } catch (Throwable t) {
      t.printStackTrace();
      code = 1;
    }
    System.out.flush();
    System.err.flush();
    Runtime.getRuntime().halt(code);
  }
}
