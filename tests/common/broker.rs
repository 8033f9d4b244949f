//! Shared machinery of the end-to-end tests: a broker per test (Apache
//! Kafka, or Tansu where a second implementation adds something), the
//! `weir run` process, Kafka helpers (topic creation, producing to explicit
//! partitions, reading sink topics from the beginning) and a tiny
//! Prometheus scraper.
//!
//! Everything waits on events with a deadline (a port accepting TCP, a record
//! arriving, a process exiting); nothing sleeps in place of synchronisation.
//! Guards kill their process on drop and, when the test is panicking, print
//! the tail of that process's log.

#![allow(dead_code)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tansu needs this or its first group join waits ~23 s (DESIGN.md §6).
pub const SESSION_TIMEOUT_MS: &str = "6000";

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Calls `attempt` until it gives `Ok`, pausing `pause` between attempts;
/// after each failed one `alive` is asked and may panic (e.g. the process
/// waited for died). Panics with `failure(last error)` once an attempt
/// fails after `deadline`.
pub fn retry_until<T>(
    deadline: Instant,
    pause: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
    mut alive: impl FnMut(),
    failure: impl Fn(&str) -> String,
) -> T {
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) => {
                alive();
                assert!(Instant::now() < deadline, "{}", failure(&e));
                std::thread::sleep(pause);
            }
        }
    }
}

/// Polls until `127.0.0.1:port` accepts a TCP connection; `alive` is asked
/// between attempts and may panic (e.g. the process behind the port died).
pub fn wait_for_port(port: u16, timeout: Duration, alive: impl FnMut()) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    retry_until(
        Instant::now() + timeout,
        Duration::from_millis(50),
        || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .map(drop)
                .map_err(|e| e.to_string())
        },
        alive,
        |e| format!("127.0.0.1:{port} did not accept TCP within {timeout:?}: {e}"),
    );
}

/// Last `n` lines of a log file (empty when unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Kills and reaps `child`; when the test is panicking, prints the last `n`
/// lines of its log file `log`, headed `what` (the guards' drop).
fn kill_and_report(child: &mut Child, what: &str, log: &Path, n: usize) {
    let _ = child.kill();
    let _ = child.wait();
    if std::thread::panicking() {
        eprintln!(
            "---- tail of {what} ({}) ----\n{}\n----",
            log.display(),
            tail(log, n)
        );
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Which broker a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Apache Kafka 4.4, one KRaft node (broker + controller), from
    /// `WEIR_KAFKA` (`scripts/kafka.sh path`): the reference for every claim.
    Kafka,
    /// Tansu (`WEIR_TANSU`, `scripts/tansu.sh path`), in-memory storage: a
    /// second, independent implementation of the protocol.
    Tansu,
}

/// A broker process of its own on free loopback ports, in a folder of the
/// test's temporary directory; killed on drop (printing its log's tail when
/// the test panics).
pub struct Broker {
    child: Child,
    /// Which broker this is.
    pub kind: Kind,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
}

/// Apache Kafka's jar folder: `WEIR_KAFKA`, else `.kafka/libs` of this
/// checkout when `scripts/kafka.sh` has filled it. Panics (never skips)
/// when neither is there.
pub fn kafka_libs() -> PathBuf {
    let dir = std::env::var_os("WEIR_KAFKA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".kafka/libs"));
    assert!(
        dir.join(".complete").is_file(),
        "no Apache Kafka in {}: the tests need it. Run `make test`, or `scripts/kafka.sh` \
         (then WEIR_KAFKA=$(scripts/kafka.sh path))",
        dir.display()
    );
    dir
}

/// The broker's settings of a single KRaft node with a broker listener on
/// `port` and a controller on `controller`, its data in `data`. Tests
/// that need other listeners (TLS, SASL) edit the text before
/// [`Broker::start_kafka`].
pub fn kafka_properties(port: u16, controller: u16, data: &Path) -> String {
    format!(
        "process.roles=broker,controller\n\
         node.id=1\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=PLAINTEXT\n\
         controller.listener.names=CONTROLLER\n\
         controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
         log.dirs={}\n\
         num.partitions=4\n\
         offsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=4\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         transaction.state.log.num.partitions=4\n\
         share.coordinator.state.topic.replication.factor=1\n\
         share.coordinator.state.topic.min.isr=1\n\
         group.initial.rebalance.delay.ms=0\n\
         log.cleaner.backoff.ms=1000\n",
        data.display()
    )
}

impl Broker {
    /// Apache Kafka: a single KRaft node on free ports (see
    /// [`kafka_properties`]), formatted (`StorageTool format --standalone`)
    /// and started with a 512 MB heap; returns once it answers metadata.
    pub fn kafka(dir: &Path) -> Broker {
        let port = free_port();
        let controller = free_port();
        let home = dir.join(format!("kafka-{port}"));
        std::fs::create_dir_all(&home).expect("kafka home");
        let props = home.join("server.properties");
        std::fs::write(
            &props,
            kafka_properties(port, controller, &home.join("data")),
        )
        .expect("server.properties");
        Self::start_kafka(&home, &props, port)
    }

    /// Starts Apache Kafka with the settings file `props` (whose client
    /// listener is on `port`) in `home`: the formatting of its log dir, then
    /// the node; returns once `port` accepts TCP and metadata lists a broker.
    pub fn start_kafka(home: &Path, props: &Path, port: u16) -> Broker {
        Self::start_kafka_with(home, props, port, &[])
    }

    /// As [`Broker::start_kafka`], with `format_args` added to the
    /// `StorageTool format` command, e.g. `--add-scram
    /// SCRAM-SHA-512=[name=…,password=…]` (KRaft takes SCRAM users at
    /// format time).
    pub fn start_kafka_with(
        home: &Path,
        props: &Path,
        port: u16,
        format_args: &[String],
    ) -> Broker {
        let libs = kafka_libs();
        let cp = format!("{}/*", libs.display());
        let log4j = home.join("log4j2.properties");
        std::fs::write(
            &log4j,
            "appender.out.type=Console\nappender.out.name=OUT\nappender.out.layout.type=PatternLayout\n\
             appender.out.layout.pattern=[%d] %p %m (%c)%n\nrootLogger.level=INFO\nrootLogger.appenderRef.out.ref=OUT\n\
             logger.kafka.name=org.apache.kafka\nlogger.kafka.level=WARN\nlogger.state.name=state.change.logger\nlogger.state.level=WARN\n",
        )
        .expect("log4j2.properties");
        let log = home.join("kafka.log");
        let java_opts = |c: &mut Command| {
            c.arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
                .arg("-cp")
                .arg(&cp);
        };
        let mut format = Command::new("java");
        java_opts(&mut format);
        let out = format
            .args(["kafka.tools.StorageTool", "format", "--standalone"])
            .args(["-t", "bDc0YzQ3ZjE2NWRjNDVhMw"])
            .arg("-c")
            .arg(props)
            .args(format_args)
            .stdin(Stdio::null())
            .output()
            .expect("run java kafka.tools.StorageTool (is Java 17 installed?)");
        assert!(
            out.status.success(),
            "kafka-storage format failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let file = File::create(&log).expect("create kafka log");
        let mut cmd = Command::new("java");
        cmd.args([
            "-Xmx512m",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
        ])
        .arg("-Djava.awt.headless=true");
        java_opts(&mut cmd);
        let child = cmd
            .arg("kafka.Kafka")
            .arg(props)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup log"))
            .stderr(file)
            .spawn()
            .expect("start java kafka.Kafka");
        let mut b = Broker {
            child,
            kind: Kind::Kafka,
            port,
            log,
        };
        b.wait_ready();
        b
    }

    /// Tansu with in-memory storage on a free port (`$WEIR_TANSU broker …`).
    /// Panics (never skips) when `WEIR_TANSU` is unset.
    pub fn tansu(dir: &Path) -> Broker {
        let bin = std::env::var_os("WEIR_TANSU").unwrap_or_else(|| {
            panic!(
                "WEIR_TANSU is not set: this test needs the Tansu broker. \
                 Run `make test`, or set WEIR_TANSU=$(scripts/tansu.sh path)"
            )
        });
        assert!(
            Path::new(&bin).is_file(),
            "WEIR_TANSU={bin:?} is not a file; set WEIR_TANSU=$(scripts/tansu.sh path)"
        );
        let port = free_port();
        let log = dir.join(format!("tansu-{port}.log"));
        let out = File::create(&log).expect("create tansu log");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu {bin:?}: {e}"));
        let mut t = Broker {
            child,
            kind: Kind::Tansu,
            port,
            log,
        };
        t.wait_ready();
        t
    }

    /// Waits until the port accepts TCP and (Kafka) a metadata request lists
    /// a broker; panics with the log's tail if the process exits first.
    fn wait_ready(&mut self) {
        let md_config = self.client_config();
        let (child, log, port) = (&mut self.child, self.log.clone(), self.port);
        let mut alive = || {
            if let Some(st) = child.try_wait().expect("try_wait") {
                panic!(
                    "broker exited ({st}) before it was ready; log:\n{}",
                    tail(&log, 30)
                );
            }
        };
        wait_for_port(port, Duration::from_secs(60), &mut alive);
        if self.kind == Kind::Kafka {
            let md: BaseConsumer = md_config.create().expect("metadata client");
            retry_until(
                Instant::now() + Duration::from_secs(60),
                Duration::from_millis(50),
                || match md.fetch_metadata(None, Duration::from_secs(2)) {
                    Ok(m) if !m.brokers().is_empty() => Ok(()),
                    Ok(_) => Err("no broker in the metadata".to_owned()),
                    Err(e) => Err(e.to_string()),
                },
                &mut alive,
                |e| format!("Kafka not ready after 60 s: {e}"),
            );
        }
    }

    /// Path of the broker's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Process id of the broker (for CPU and RSS readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Client settings for the test's own clients.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c.set("session.timeout.ms", SESSION_TIMEOUT_MS);
        c
    }

    /// Settings of a test's reader of whole topics: `group` (never
    /// committed), no end-of-partition events, a short fetch backoff, and
    /// `read_committed` or `read_uncommitted`.
    pub fn reader_config(&self, group: &str, read_committed: bool) -> ClientConfig {
        let mut cfg = self.client_config();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.queue.backoff.ms", "10")
            .set(
                "isolation.level",
                if read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            );
        cfg
    }

    /// Creates a topic with `partitions` partitions (Tansu would auto-create 4).
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin client");
        // No time retention: test records carry event times years or
        // months old, which Kafka's default (7 days, checked every 5
        // minutes) would delete in the middle of a run.
        let topic =
            NewTopic::new(name, partitions, TopicReplication::Fixed(1)).set("retention.ms", "-1");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let res = futures::executor::block_on(admin.create_topics([&topic], &opts))
            .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
        for r in res {
            match r {
                Ok(_) => {}
                Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    panic!("topic {t} already exists")
                }
                Err((t, code)) => panic!("create topic {t}: {code}"),
            }
        }
        // Wait until the metadata shows it with the right partition count.
        let md_client: BaseConsumer = self.client_config().create().expect("metadata client");
        let n = retry_until(
            Instant::now() + Duration::from_secs(20),
            Duration::from_millis(50),
            || partition_count(&md_client, name),
            || {},
            |e| format!("topic {name} not in metadata after 20 s: {e}"),
        );
        assert_eq!(n, partitions as usize, "topic {name} partition count");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let what = format!("the {:?} broker log", self.kind);
        kill_and_report(&mut self.child, &what, &self.log, 15);
    }
}

/// Partition count of `topic`, from a metadata request for every topic (so
/// the request itself cannot auto-create it). `Err` when it does not exist.
pub fn partition_count(client: &BaseConsumer, topic: &str) -> Result<usize, String> {
    let md = client
        .fetch_metadata(None, Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    md.topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len())
        .ok_or_else(|| format!("no topic {topic}"))
}

/// Counts deliveries; remembers failures.
#[derive(Default)]
pub struct DeliveryTally {
    ok: AtomicU64,
    failed: Mutex<Vec<String>>,
}

impl ClientContext for DeliveryTally {}

impl ProducerContext for DeliveryTally {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                self.failed
                    .lock()
                    .unwrap()
                    .push(format!("{}[{}]: {e}", m.topic(), m.partition()))
            }
        }
    }
}

/// Produces `(partition, key, payload)` records to `topic`, in order per
/// partition (idempotent producer), and waits until every one is acknowledged.
pub fn produce_all(broker: &Broker, topic: &str, records: &[(i32, String, Vec<u8>)]) {
    produce_to(broker.client_config(), topic, records);
}

/// As [`produce_all`], with the client settings `cfg` (usable from another
/// thread).
pub fn produce_to(cfg: ClientConfig, topic: &str, records: &[(i32, String, Vec<u8>)]) {
    let timed: Vec<(i32, &str, &[u8], Option<i64>)> = records
        .iter()
        .map(|(p, k, v)| (*p, k.as_str(), v.as_slice(), None))
        .collect();
    produce_records(cfg, topic, &timed);
}

/// As [`produce_all`], each record with its Kafka timestamp (ms):
/// `(partition, key, payload, timestamp)`.
pub fn produce_timed(broker: &Broker, topic: &str, records: &[(i32, String, Vec<u8>, i64)]) {
    let timed: Vec<(i32, &str, &[u8], Option<i64>)> = records
        .iter()
        .map(|(p, k, v, t)| (*p, k.as_str(), v.as_slice(), Some(*t)))
        .collect();
    produce_records(broker.client_config(), topic, &timed);
}

/// Produces `(partition, key, payload, timestamp)` records in order per
/// partition (idempotent producer) and waits until every one is
/// acknowledged.
fn produce_records(
    mut cfg: ClientConfig,
    topic: &str,
    records: &[(i32, &str, &[u8], Option<i64>)],
) {
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    let producer: BaseProducer<DeliveryTally> = cfg
        .create_with_context(DeliveryTally::default())
        .expect("producer");
    for (p, key, payload, ts) in records {
        let mut rec = BaseRecord::to(topic)
            .partition(*p)
            .key(*key)
            .payload(*payload);
        if let Some(t) = ts {
            rec = rec.timestamp(*t);
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(10));
                    rec = r;
                }
                Err((e, _)) => panic!("produce to {topic}[{p}]: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("flush to {topic}: {e}"));
    let ctx = producer.context();
    let failed = ctx.failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "deliveries failed: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert_eq!(
        ctx.ok.load(Ordering::Relaxed),
        records.len() as u64,
        "acknowledged records"
    );
}

/// One record read from a sink topic.
#[derive(Debug, Clone)]
pub struct SinkRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Kafka timestamp, ms.
    pub timestamp: Option<i64>,
    /// Key as text (lossy).
    pub key: Option<String>,
    /// Payload as text (lossy).
    pub payload: Option<String>,
}

/// Key of the end marker [`SinkReader::read_to_end`] writes to each partition.
pub const END_MARKER_KEY: &str = "__weir_e2e_end_of_sink__";

/// Reads topics from the beginning of every partition (no group
/// membership), accumulating every record.
pub struct SinkReader {
    consumer: BaseConsumer,
    topics: Vec<String>,
    partitions: BTreeMap<String, usize>,
    /// Every record read so far, in arrival order (end markers excluded).
    pub records: Vec<SinkRecord>,
    markers_seen: usize,
}

impl SinkReader {
    /// Waits (up to `timeout`) until every topic exists, then assigns all
    /// their partitions from the beginning.
    pub fn new(broker: &Broker, topics: &[&str], timeout: Duration, alive: impl FnMut()) -> Self {
        Self::with_isolation(broker, topics, timeout, false, alive)
    }

    /// As [`SinkReader::new`]; with `read_committed`, only records of
    /// committed transactions are read.
    pub fn with_isolation(
        broker: &Broker,
        topics: &[&str],
        timeout: Duration,
        read_committed: bool,
        mut alive: impl FnMut(),
    ) -> Self {
        let cfg = broker.reader_config(
            &format!("weir-e2e-reader-{}", std::process::id()),
            read_committed,
        );
        let consumer: BaseConsumer = cfg.create().expect("sink reader");
        let deadline = Instant::now() + timeout;
        let mut partitions = BTreeMap::new();
        for t in topics {
            let n = retry_until(
                deadline,
                Duration::from_millis(100),
                || partition_count(&consumer, t),
                &mut alive,
                |e| format!("sink topic {t} not created within {timeout:?}: {e}"),
            );
            partitions.insert(t.to_string(), n);
        }
        let mut tpl = TopicPartitionList::new();
        for (t, n) in &partitions {
            for p in 0..*n as i32 {
                tpl.add_partition_offset(t, p, Offset::Beginning)
                    .expect("add partition");
            }
        }
        consumer.assign(&tpl).expect("assign");
        SinkReader {
            consumer,
            topics: topics.iter().map(|s| s.to_string()).collect(),
            partitions,
            records: Vec::new(),
            markers_seen: 0,
        }
    }

    /// Partition count of each topic read.
    pub fn partitions(&self) -> &BTreeMap<String, usize> {
        &self.partitions
    }

    /// Reads for at most `budget`; returns how many records were added.
    pub fn poll_for(&mut self, budget: Duration) -> usize {
        let until = Instant::now() + budget;
        let before = self.records.len();
        while Instant::now() < until {
            match self.consumer.poll(Duration::from_millis(50)) {
                None => {
                    if self.records.len() > before {
                        break;
                    }
                }
                Some(Err(e)) => panic!("sink reader: {e}"),
                Some(Ok(m)) => {
                    let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                    if key.as_deref() == Some(END_MARKER_KEY) {
                        self.markers_seen += 1;
                        continue;
                    }
                    self.records.push(SinkRecord {
                        topic: m.topic().to_owned(),
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp: m.timestamp().to_millis(),
                        key,
                        payload: m.payload().map(|p| String::from_utf8_lossy(p).into_owned()),
                    });
                }
            }
        }
        self.records.len() - before
    }

    /// Reads until `done(records)` holds; `alive` is called between rounds
    /// and may panic. Panics with `describe(records)` after `timeout`.
    pub fn read_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[SinkRecord]) -> bool,
        mut alive: impl FnMut(),
        describe: impl Fn(&[SinkRecord]) -> String,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.records) {
                return;
            }
            alive();
            if Instant::now() >= deadline {
                panic!(
                    "sinks incomplete after {timeout:?} ({} records read): {}",
                    self.records.len(),
                    describe(&self.records)
                );
            }
            self.poll_for(Duration::from_millis(500));
        }
    }

    /// Once nothing writes to the topics any more: appends an end marker to
    /// every partition and reads until all markers are back, so every record
    /// written before is in `records` (no reliance on Tansu's high watermark,
    /// which is wrong).
    pub fn read_to_end(&mut self, broker: &Broker, timeout: Duration) {
        let mut markers = Vec::new();
        for (t, n) in &self.partitions {
            for p in 0..*n as i32 {
                markers.push((t.clone(), p));
            }
        }
        let mut cfg = broker.client_config();
        cfg.set("acks", "all");
        let producer: BaseProducer = cfg.create().expect("marker producer");
        for (t, p) in &markers {
            producer
                .send(
                    BaseRecord::to(t)
                        .partition(*p)
                        .key(END_MARKER_KEY)
                        .payload("end"),
                )
                .map_err(|(e, _)| e)
                .expect("send end marker");
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("flush end markers");
        let want = self.markers_seen + markers.len();
        let deadline = Instant::now() + timeout;
        while self.markers_seen < want {
            assert!(
                Instant::now() < deadline,
                "end markers not read back within {timeout:?} ({} of {})",
                self.markers_seen,
                want
            );
            self.poll_for(Duration::from_millis(200));
        }
        let _ = &self.topics;
    }
}

/// `weir run --config …` as a child process; stdout and stderr go to files.
/// Killed (SIGKILL) on drop; prints the tail of its stderr when panicking.
pub struct Weir {
    /// The process.
    pub child: Child,
    /// Its stderr file.
    pub stderr: PathBuf,
    /// Its metrics port.
    pub metrics_port: u16,
    /// Label for messages.
    pub name: String,
}

impl Weir {
    /// Starts `weir run --config CONFIG [extra…]` in `dir`, logs to
    /// `dir/NAME.stderr` and `dir/NAME.stdout`.
    pub fn start(dir: &Path, name: &str, config: &Path, extra: &[&str], metrics_port: u16) -> Weir {
        Self::start_with_env(dir, name, config, extra, metrics_port, &[])
    }

    /// As [`Weir::start`], with the environment variables `env` set (the
    /// secrets a config takes as `${VAR}`).
    pub fn start_with_env(
        dir: &Path,
        name: &str,
        config: &Path,
        extra: &[&str],
        metrics_port: u16,
        env: &[(&str, &str)],
    ) -> Weir {
        let stderr = dir.join(format!("{name}.stderr"));
        let stdout = dir.join(format!("{name}.stdout"));
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(extra)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create stdout file"))
            .stderr(File::create(&stderr).expect("create stderr file"))
            .spawn()
            .expect("spawn weir");
        Weir {
            child,
            stderr,
            metrics_port,
            name: name.to_owned(),
        }
    }

    /// Panics (with the stderr tail) if the process has exited.
    pub fn assert_alive(&mut self) {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited unexpectedly ({st})", self.name);
        }
    }

    /// Process id as text, for `kill`.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let st = Command::new("kill")
            .args(["-TERM", &self.pid()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM {} failed", self.pid());
        wait_exit(&mut self.child, timeout)
            .unwrap_or_else(|| panic!("{} did not exit within {timeout:?} of SIGTERM", self.name))
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL weir");
        let _ = self.child.wait();
    }

    /// Tail of its stderr.
    pub fn stderr_tail(&self, n: usize) -> String {
        tail(&self.stderr, n)
    }

    /// GET /metrics, parsed.
    pub fn metrics(&self) -> Metrics {
        Metrics::parse(&http_get(self.metrics_port, "/metrics"))
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let what = format!("{} stderr", self.name);
        kill_and_report(&mut self.child, &what, &self.stderr, 40);
    }
}

/// `GET path` over HTTP/1.0 on 127.0.0.1:port: the status code and the
/// body, whatever the status.
pub fn http_status(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status line in {resp:?}"));
    (code, body.to_owned())
}

/// `GET path` over HTTP/1.0 on 127.0.0.1:port; the body, or panics on a
/// non-200 status.
pub fn http_get(port: u16, path: &str) -> String {
    let (code, body) = http_status(port, path);
    assert_eq!(code, 200, "GET {path}: status {code}\n{body}");
    body
}

/// Samples of a Prometheus text exposition: (name, labels) → value.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Every sample, as `(name, "{labels}")` → value.
    pub samples: BTreeMap<(String, String), f64>,
}

impl Metrics {
    /// Parses the text format (comments skipped).
    pub fn parse(text: &str) -> Metrics {
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.find('{') {
                Some(i) => (&series[..i], &series[i..]),
                None => (series, ""),
            };
            let v: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad sample {line}"));
            samples.insert((name.to_owned(), labels.to_owned()), v);
        }
        Metrics { samples }
    }

    /// Sum of every series of `name`.
    pub fn sum(&self, name: &str) -> u64 {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, v)| *v)
            .sum::<f64>() as u64
    }

    /// Every series of `name` as `labels=value`, for messages.
    pub fn series(&self, name: &str) -> Vec<String> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, l), v)| format!("{l}={v}"))
            .collect()
    }
}

/// `(partition, last stable offset, log end offset)` of every partition of
/// `topic`: ListOffsets (latest) asked by a `read_committed` client answers
/// the last stable offset, by a `read_uncommitted` one the high watermark
/// (KIP-98). Equal when no transaction is open on the partition.
pub fn stable_offsets(broker: &Broker, topic: &str) -> Vec<(i32, i64, i64)> {
    let client = |isolation: &str| -> BaseConsumer {
        let mut cfg = broker.client_config();
        cfg.set("isolation.level", isolation);
        cfg.create().expect("offsets client")
    };
    let (committed, uncommitted) = (client("read_committed"), client("read_uncommitted"));
    let n = partition_count(&uncommitted, topic).expect("topic exists");
    (0..n as i32)
        .map(|p| {
            let w = |c: &BaseConsumer| {
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("watermarks of {topic}[{p}]: {e}"))
                    .1
            };
            (p, w(&committed), w(&uncommitted))
        })
        .collect()
}
