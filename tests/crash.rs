//! Crash and move, end to end on Apache Kafka (DESIGN.md §3, Delivery and
//! State): three `weir run` replicas, each with its own `instance_id`,
//! share one pipeline whose records cross the repartition topic (`key_by`
//! with session windows, and `key_by` with tumbling windows). One replica after
//! another is killed with SIGKILL mid-stream, the other two take over its
//! partitions (restoring its windows from the changelog), and it is started
//! again under the same `instance_id`. The results in the sink must equal a
//! batch computation done here:
//! - `at_least_once`: every result present and correct, none partial or
//!   counted twice; identical repeats of whole results are allowed and
//!   counted;
//! - `exactly_once`: read by a `read_committed` consumer, every result
//!   exactly once: 0 repeats, 0 missing, 0 wrong. Transactions time out
//!   only after 15 minutes here, so the results complete (and the sink's
//!   last stable offset reaches its end) only because each restarted
//!   replica fences its killed predecessor (same `transactional.id`) and so
//!   aborts its open transaction.
//!
//! Also: two replicas that share one `instance_id` (a misconfiguration):
//! the fenced one says so in its log and stops, and the output stays exact.
//! The last test is a canary of Tansu's transactions (no claim of weir
//! rests on Tansu). Each test prints its numbers:
//! `cargo test --test crash -- --nocapture --test-threads=1`
//! (`make test` sets `WEIR_KAFKA` and `WEIR_TANSU`).

#[path = "common/broker.rs"]
mod broker;
#[path = "common/sessions.rs"]
mod sessions;

use broker::{free_port, Broker, SinkReader, SinkRecord, Weir};
use serde_json::{json, Value};
use sessions::{
    batch_sessions, batch_tumbling, start, tally, visits, write_config, Tally, PIPELINE,
    TUMBLING_PIPELINE,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;
const EVENTS: i64 = 60_000;
const COMPLETE_WITHIN: Duration = Duration::from_secs(300);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialize() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

struct Replica {
    weir: Weir,
    name: String,
    config: PathBuf,
    port: u16,
    runs: usize,
}

/// Sum of `weir_rebalances_total{kind="assign"}` over the live replicas.
fn assignments(replicas: &[&Replica]) -> u64 {
    replicas
        .iter()
        .map(|r| {
            r.weir
                .metrics()
                .samples
                .iter()
                .filter(|((n, l), _)| n == "weir_rebalances_total" && l.contains("kind=\"assign\""))
                .map(|(_, v)| *v as u64)
                .sum::<u64>()
        })
        .sum()
}

/// An input record: `(partition, key, payload)`.
type Input = (i32, String, Vec<u8>);

/// The expected results by `(key, window start)`.
type Expected = BTreeMap<(String, i64), Value>;

/// A pipeline of the crash tests: its text (with `DELIVERY`), its sink
/// topic and its batch reference.
struct Case {
    label: &'static str,
    pipeline: &'static str,
    sink: &'static str,
    reference: fn(&[Input]) -> Expected,
}

const SESSIONS: Case = Case {
    label: "key_by + session windows",
    pipeline: PIPELINE,
    sink: "sessions",
    reference: batch_sessions,
};

const TUMBLING: Case = Case {
    label: "key_by + tumbling windows",
    pipeline: TUMBLING_PIPELINE,
    sink: "visits-per-minute",
    reference: batch_tumbling,
};

/// Replicas are killed in this order, each once a further share of the
/// results is out: r1 at 10 %, r2 at 35 %, r0 at 60 %.
const KILLS: [(usize, usize); 3] = [(1, 10), (2, 35), (0, 60)];

fn crash_and_move(case: &Case, delivery: &str) -> Tally {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    let input = visits(EVENTS, PARTITIONS);
    let expected = (case.reference)(&input);
    broker.create_topic("visits", PARTITIONS);
    // A live stream: the first tenth now, the rest in chunks while the
    // replicas run (and die).
    let first = input.len() / 10;
    broker::produce_all(&broker, "visits", &input[..first]);
    let rest: Vec<_> = input[first..].to_vec();
    let cfg = broker.client_config();
    let stream = std::thread::spawn(move || {
        for chunk in rest.chunks(1_500) {
            broker::produce_to(cfg.clone(), "visits", chunk);
            // Pacing of the input, not synchronisation.
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let pipeline = d.join("pipeline.yaml");
    std::fs::write(&pipeline, case.pipeline.replace("DELIVERY", delivery)).unwrap();
    let mut replicas: Vec<Replica> = (0..3)
        .map(|i| {
            let name = format!("r{i}");
            let port = free_port();
            let config = write_config(d, &broker.bootstrap(), port, &name, &pipeline);
            let weir = start(d, &format!("{name}-run0"), &config, port);
            Replica {
                weir,
                name,
                config,
                port,
                runs: 1,
            }
        })
        .collect();
    println!(
        "{} / {delivery}: {} visits on {PARTITIONS} partitions, {} results expected; 3 replicas started after {:.1?}",
        case.label,
        input.len(),
        expected.len(),
        t0.elapsed()
    );
    let eos = delivery == "exactly_once";
    let mut reader =
        SinkReader::with_isolation(&broker, &[case.sink], Duration::from_secs(60), eos, || {});

    for (victim, percent) in KILLS {
        let target = expected.len() * percent / 100;
        reader.read_until(
            COMPLETE_WITHIN,
            |recs| tally(&expected, recs).present >= target,
            || replicas.iter_mut().for_each(|r| r.weir.assert_alive()),
            |recs| tally(&expected, recs).summary(),
        );
        // Its death moves partitions only once it holds some: a replica
        // that joined the group late may still be waiting for them.
        let deadline = Instant::now() + Duration::from_secs(60);
        while assignments(&[&replicas[victim]]) == 0 {
            assert!(
                Instant::now() < deadline,
                "{} got no partitions",
                replicas[victim].name
            );
            replicas.iter_mut().for_each(|r| r.weir.assert_alive());
            reader.poll_for(Duration::from_millis(200));
        }
        let others: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
        let before = assignments(&[&replicas[others[0]], &replicas[others[1]]]);
        replicas[victim].weir.kill9();
        println!(
            "SIGKILL {} after {:.1?} (input still streaming: {}): {}",
            replicas[victim].name,
            t0.elapsed(),
            !stream.is_finished(),
            tally(&expected, &reader.records).summary()
        );
        // The other two take over its partitions (a rebalance each).
        let deadline = Instant::now() + Duration::from_secs(60);
        while assignments(&[&replicas[others[0]], &replicas[others[1]]]) < before + 2 {
            assert!(Instant::now() < deadline, "the partitions did not move");
            for i in &others {
                replicas[*i].weir.assert_alive();
            }
            reader.poll_for(Duration::from_millis(200));
        }
        // Again, under the same instance id.
        let r = &mut replicas[victim];
        r.weir = start(d, &format!("{}-run{}", r.name, r.runs), &r.config, r.port);
        r.runs += 1;
        println!(
            "partitions moved, {} restarted after {:.1?}: {}",
            r.name,
            t0.elapsed(),
            tally(&expected, &reader.records).summary()
        );
    }
    stream.join().expect("input stream");
    reader.read_until(
        COMPLETE_WITHIN,
        |recs| tally(&expected, recs).present == expected.len(),
        || replicas.iter_mut().for_each(|r| r.weir.assert_alive()),
        |recs| tally(&expected, recs).summary(),
    );
    let complete = t0.elapsed();
    for r in &mut replicas {
        let st = r.weir.terminate(Duration::from_secs(20));
        assert!(st.success(), "{} exit status after SIGTERM: {st}", r.name);
    }
    if eos {
        // No transaction is left open: the killed replicas' were aborted
        // when their successors fenced them, long before the 15 minutes of
        // transaction.timeout.ms.
        for (p, lso, end) in broker::stable_offsets(&broker, case.sink) {
            assert_eq!(
                lso, end,
                "{}[{p}]: last stable offset {lso}, log end {end}",
                case.sink
            );
        }
        println!(
            "every partition of {}: last stable offset = log end",
            case.sink
        );
    }
    reader.read_to_end(&broker, Duration::from_secs(60));
    let t = tally(&expected, &reader.records);
    println!(
        "{} / {delivery}: after 3 kill -9 and restarts: {} sink records read; {} (complete after {complete:.1?})",
        case.label,
        reader.records.len(),
        t.summary(),
    );
    assert_eq!(t.missing, 0, "{}", t.summary());
    assert!(t.wrong.is_empty(), "{}", t.summary());
    t
}

#[test]
fn at_least_once_kill_9_of_each_replica_gives_exact_sessions() {
    let _one = serialize();
    let t = crash_and_move(&SESSIONS, "at_least_once");
    println!(
        "at_least_once: {} identical repeats of whole results",
        t.repeats
    );
}

/// [`crash_and_move`] with `exactly_once`; asserts that no `result` (the
/// kind of window, for the message) is repeated.
fn crash_and_move_exactly_once(case: &Case, result: &str) {
    let t = crash_and_move(case, "exactly_once");
    assert_eq!(
        t.repeats,
        0,
        "read_committed sees each {result} once: {}",
        t.summary()
    );
}

#[test]
fn exactly_once_kill_9_of_each_replica_gives_each_session_once() {
    let _one = serialize();
    crash_and_move_exactly_once(&SESSIONS, "session");
}

#[test]
fn exactly_once_kill_9_of_each_replica_gives_each_tumbling_window_once() {
    let _one = serialize();
    crash_and_move_exactly_once(&TUMBLING, "window");
}

/// The case of the two tests of replicas on one host: 12,000 visits on a
/// broker of their own, the sessions they must give, and the
/// `exactly_once` sessions pipeline.
struct OneHost {
    dir: tempfile::TempDir,
    broker: Broker,
    expected: Expected,
    pipeline: PathBuf,
}

fn one_host() -> OneHost {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::kafka(dir.path());
    broker.create_topic("visits", PARTITIONS);
    let input = visits(12_000, PARTITIONS);
    let expected = batch_sessions(&input);
    broker::produce_all(&broker, "visits", &input);
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(&pipeline, PIPELINE.replace("DELIVERY", "exactly_once")).unwrap();
    OneHost {
        dir,
        broker,
        expected,
        pipeline,
    }
}

impl OneHost {
    /// A `read_committed` reader of the sink.
    fn reader(&self) -> SinkReader {
        SinkReader::with_isolation(&self.broker, &["sessions"], COMPLETE_WITHIN, true, || {})
    }

    /// Reads until `done(records)` holds; `alive` between rounds.
    fn read_until(
        &self,
        reader: &mut SinkReader,
        done: impl FnMut(&[SinkRecord]) -> bool,
        alive: impl FnMut(),
    ) {
        let expected = &self.expected;
        reader.read_until(COMPLETE_WITHIN, done, alive, |recs| {
            tally(expected, recs).summary()
        });
    }

    /// Reads until every expected session is present; `alive` between
    /// rounds.
    fn read_all(&self, reader: &mut SinkReader, alive: impl FnMut()) {
        let expected = &self.expected;
        self.read_until(
            reader,
            |recs| tally(expected, recs).present == expected.len(),
            alive,
        );
    }

    /// Once every replica has stopped: reads the sink to its end and
    /// asserts that it holds every session exactly once.
    fn assert_exact(&self, reader: &mut SinkReader, label: &str) {
        reader.read_to_end(&self.broker, Duration::from_secs(60));
        let t = tally(&self.expected, &reader.records);
        println!("{label}: {}", t.summary());
        assert_eq!(
            (t.present, t.missing, t.wrong.len(), t.repeats),
            (self.expected.len(), 0, 0, 0),
            "{}",
            t.summary()
        );
    }
}

/// Two replicas configured with the same `instance_id` share one
/// `transactional.id`: the second to start fences the first, which logs
/// why and stops; the survivor takes every partition, and a
/// `read_committed` reader sees every session exactly once.
#[test]
fn exactly_once_two_replicas_sharing_an_instance_id_fence_and_stay_exact() {
    let _one = serialize();
    let h = one_host();
    let d = h.dir.path();
    let (pa, pb) = (free_port(), free_port());
    let ca = write_config(d, &h.broker.bootstrap(), pa, "shared", &h.pipeline);
    let a_config = d.join("a.yaml");
    std::fs::rename(&ca, &a_config).unwrap();
    let b_config = write_config(d, &h.broker.bootstrap(), pb, "shared", &h.pipeline);
    let mut a = start(d, "a", &a_config, pa);
    let mut reader = h.reader();
    // b starts once a is working, and fences it.
    h.read_until(&mut reader, |recs| !recs.is_empty(), || a.assert_alive());
    let mut b = start(d, "b", &b_config, pb);
    let st = broker::wait_exit(&mut a.child, COMPLETE_WITHIN).expect("the fenced replica stops");
    let log = std::fs::read_to_string(&a.stderr).unwrap();
    let fenced = log
        .lines()
        .find(|l| l.contains("fenced"))
        .unwrap_or_else(|| panic!("no fencing error in a's log ({st}):\n{}", a.stderr_tail(20)));
    println!("a ({st}): {fenced}");
    assert!(
        fenced.contains("weir.sessions.shared"),
        "the error names the transactional id: {fenced}"
    );
    assert!(!st.success(), "a stops with an error: {st}");
    h.read_all(&mut reader, || b.assert_alive());
    let st = b.terminate(Duration::from_secs(20));
    assert!(st.success(), "b exit status after SIGTERM: {st}");
    h.assert_exact(&mut reader, "shared instance_id");
}

/// Two replicas on one host with no `instance_id` in their configs: the
/// default (`<host>-<pid>`) differs per process, so neither fences the
/// other; both keep running, share the partitions, and a `read_committed`
/// reader sees every session exactly once.
#[test]
fn exactly_once_two_replicas_on_one_host_without_instance_id_do_not_fence() {
    let _one = serialize();
    let h = one_host();
    let d = h.dir.path();
    let mut replicas: Vec<Weir> = ["a", "b"]
        .iter()
        .map(|name| {
            let port = free_port();
            let config = write_config(d, &h.broker.bootstrap(), port, name, &h.pipeline);
            let text = std::fs::read_to_string(&config).unwrap();
            let unset: String = text
                .lines()
                .filter(|l| !l.starts_with("instance_id:"))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&config, unset).unwrap();
            start(d, name, &config, port)
        })
        .collect();
    let mut reader = h.reader();
    h.read_all(&mut reader, || {
        replicas.iter_mut().for_each(|r| r.assert_alive())
    });
    let mut ids = Vec::new();
    for r in &mut replicas {
        let st = r.terminate(Duration::from_secs(20));
        assert!(st.success(), "{} exit status after SIGTERM: {st}", r.name);
        let log = std::fs::read_to_string(&r.stderr).unwrap();
        assert!(
            !log.contains("fenced"),
            "{} was fenced:\n{}",
            r.name,
            r.stderr_tail(20)
        );
        let line = log
            .lines()
            .find(|l| l.contains("instance id"))
            .expect("the instance id is logged");
        let v: Value = serde_json::from_str(line).expect("JSON log line");
        ids.push(v["fields"]["instance"].as_str().unwrap().to_owned());
    }
    println!("default instance ids: {ids:?}");
    assert_ne!(ids[0], ids[1], "unique per process");
    h.assert_exact(&mut reader, "two replicas, default instance ids");
}

/// Restore cost, and what a restore must not hold back: one daemon runs
/// two window pipelines over the same 100,000 keys (one open window per
/// key, in a day-long tumbling window that never closes here) and a
/// stateless copy pipeline. The windows are written to the changelogs,
/// weir stops, and a new weir restores both stores before they process a
/// record. Meanwhile (DESIGN.md §4: each pipeline on a thread of its own)
/// `/healthz` answers at once and the copy pipeline keeps producing. The
/// restore time and the changelog bytes read are printed; `make bench`
/// holds the target (< 5 s).
#[test]
fn restore_of_100k_open_windows_holds_back_neither_healthz_nor_other_pipelines() {
    let _one = serialize();
    const KEYS: usize = 100_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    broker.create_topic("events", PARTITIONS);
    broker.create_topic("stream", 1);
    broker.create_topic("copied", 1);
    let t0 = 1_700_000_000_000i64;
    let input: Vec<(i32, String, Vec<u8>)> = (0..KEYS)
        .map(|i| {
            let e = json!({"ts": t0 + i as i64, "x": i % 7});
            (
                (i % PARTITIONS as usize) as i32,
                format!("k{i}"),
                e.to_string().into_bytes(),
            )
        })
        .collect();
    broker::produce_all(&broker, "events", &input);
    let pipelines = d.join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    for name in ["restore-a", "restore-b"] {
        std::fs::write(
            pipelines.join(format!("{name}.yaml")),
            format!(
                "name: {name}\nsource:\n  topics: [events]\n  key_format: text\n  event_time: {{path: $.ts, unit: ms}}\n\
                 stages:\n  - window:\n      tumbling: 1d\n      aggregate:\n        n: count()\n        total: sum(value.x)\n\
                 sinks:\n  - topic: daily-{name}\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(
        pipelines.join("copy.yaml"),
        "name: copy\nsource:\n  topics: [stream]\n  format: json\nstages:\n  - filter: value.n >= 0\nsinks:\n  - topic: copied\n",
    )
    .unwrap();
    let port = free_port();
    let config = write_config(d, &broker.bootstrap(), port, "r0", &pipelines);
    let mut first = start(d, "first", &config, port);
    let deadline = Instant::now() + COMPLETE_WITHIN;
    let m = loop {
        let m = first.metrics();
        if m.sum("weir_state_entries") == 2 * KEYS as u64 && m.sum("weir_commits_total") > 0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "first run: state not settled: {:?}",
            m.series("weir_state_entries")
        );
        first.assert_alive();
        std::thread::sleep(Duration::from_millis(200));
    };
    let st = first.terminate(Duration::from_secs(30));
    assert!(st.success(), "first run exit status: {st}");
    let written = m.sum("weir_changelog_records_total");
    assert!(
        written >= 2 * KEYS as u64,
        "changelog records written: {written}"
    );

    // The second run, with a record for the copy pipeline every 20 ms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let (cfg, stop) = (broker.client_config(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let rec = (0, format!("n{n}"), format!("{{\"n\":{n}}}").into_bytes());
                broker::produce_to(cfg.clone(), "stream", &[rec]);
                n += 1;
                // Pacing of the stream, not synchronisation.
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut reader = SinkReader::new(&broker, &["copied"], COMPLETE_WITHIN, || {});
    let t_start = Instant::now();
    let mut second = start(d, "second", &config, port);
    // Until both restores are logged: /healthz latency, and when the copy
    // pipeline's records arrive.
    let mut slowest = Duration::ZERO;
    let mut copied_at: Vec<Duration> = Vec::new();
    let deadline = Instant::now() + COMPLETE_WITHIN;
    let lines = loop {
        let log = std::fs::read_to_string(&second.stderr).unwrap_or_default();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains("state restored from the changelog"))
            .map(str::to_owned)
            .collect();
        if lines.len() == 2 {
            break lines;
        }
        assert!(Instant::now() < deadline, "restores not logged: {lines:?}");
        second.assert_alive();
        let asked = Instant::now();
        let (code, _) = broker::http_status(port, "/healthz");
        slowest = slowest.max(asked.elapsed());
        assert_eq!(code, 200, "/healthz");
        if reader.poll_for(Duration::from_millis(20)) > 0 {
            copied_at.push(t_start.elapsed());
        }
    };
    let restored_at = t_start.elapsed();
    let mut longest = 0.0f64;
    for line in &lines {
        let v: Value = serde_json::from_str(line).expect("JSON log line");
        let f = &v["fields"];
        let secs = f["seconds"].as_f64().unwrap_or(-1.0);
        longest = longest.max(secs);
        println!(
            "restore of {}: {} windows from {} changelog records ({} bytes) in {secs:.2} s",
            f["pipeline"], f["windows"], f["records"], f["bytes"]
        );
        assert_eq!(f["windows"], json!(KEYS), "every open window is restored");
    }
    let during: Vec<&Duration> = copied_at
        .iter()
        .filter(|t| t.as_secs_f64() >= restored_at.as_secs_f64() - longest)
        .collect();
    println!(
        "both restored {restored_at:.1?} after the process started; slowest /healthz meanwhile {slowest:?}; \
         copy pipeline output arrived in {} of the polls during the last {longest:.2} s of restoring",
        during.len()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz took {slowest:?} while pipelines restored"
    );
    if longest >= 2.0 {
        assert!(
            !during.is_empty(),
            "the copy pipeline produced nothing during a {longest:.2} s restore"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().expect("feeder");
    let st = second.terminate(Duration::from_secs(30));
    assert!(st.success(), "second run exit status: {st}");
}

/// What the broker does with transactions, as weir's exactly-once relies
/// on it: an open transaction holds `read_committed` readers back (they
/// see nothing of it), a new producer with the same `transactional.id`
/// fences the old one; but Tansu then returns the records of aborted
/// transactions (fenced or explicitly aborted) to `read_committed`
/// readers, where Kafka filters them out. A canary of Tansu's behaviour
/// (DESIGN.md §6): if it fails, Tansu has changed.
#[test]
fn tansu_shows_aborted_transactions_to_read_committed_readers() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{Offset, TopicPartitionList};
    let _one = serialize();
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Broker::tansu(dir.path());
    t.create_topic("probe", 1);
    let read = |marker: &str| -> Vec<String> {
        let mut cfg = t.client_config();
        cfg.set("group.id", "probe-reader")
            .set("isolation.level", "read_committed");
        let c: BaseConsumer = cfg.create().expect("reader");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("probe", 0, Offset::Beginning)
            .expect("tpl");
        c.assign(&tpl).expect("assign");
        let mut out: Vec<String> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !out.iter().any(|p| p == marker) && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
        }
        out
    };
    let producer = || {
        let mut cfg = t.client_config();
        cfg.set("transactional.id", "probe")
            .set("message.timeout.ms", "60000");
        let p: BaseProducer = cfg.create().expect("producer");
        p.init_transactions(Duration::from_secs(30))
            .expect("init transactions");
        p
    };
    let send = |p: &BaseProducer, v: &str| {
        p.send(BaseRecord::<str, str>::to("probe").payload(v))
            .map_err(|(e, _)| e)
            .expect("send");
        p.flush(Duration::from_secs(10)).expect("flush");
    };
    let a = producer();
    a.begin_transaction().expect("begin");
    send(&a, "a: open, then fenced");
    let b = producer(); // fences a
    b.begin_transaction().expect("begin");
    send(&b, "b: aborted");
    b.abort_transaction(Duration::from_secs(30)).expect("abort");
    b.begin_transaction().expect("begin");
    send(&b, "b: committed");
    b.commit_transaction(Duration::from_secs(30))
        .expect("commit");
    let got = read("b: committed");
    println!("read_committed after a fenced, an aborted and a committed transaction: {got:?}");
    assert_eq!(
        got,
        vec!["a: open, then fenced", "b: aborted", "b: committed"],
        "Tansu's read_committed: Kafka would return only the committed record"
    );
}

/// One deadline bounds a whole shutdown: with the broker gone (kill -9),
/// an exactly-once pipeline holding open windows cannot commit, and
/// SIGTERM still ends weir within `shutdown_timeout` (3 s here; each step
/// of the last commit used to wait a bound of its own), with the reason
/// in its log when the commit could not be done.
#[test]
fn shutdown_with_the_broker_gone_ends_within_shutdown_timeout() {
    let _one = serialize();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    broker.create_topic("visits", PARTITIONS);
    broker::produce_all(&broker, "visits", &visits(2_000, PARTITIONS));
    let pipeline = d.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        TUMBLING_PIPELINE.replace("DELIVERY", "exactly_once"),
    )
    .unwrap();
    let port = free_port();
    let config = write_config(d, &broker.bootstrap(), port, "r0", &pipeline);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("shutdown_timeout: 10s", "shutdown_timeout: 3s");
    std::fs::write(&config, text).unwrap();
    let mut weir = start(d, "weir", &config, port);
    let deadline = Instant::now() + COMPLETE_WITHIN;
    loop {
        let m = weir.metrics();
        if m.sum("weir_records_in_total") >= 2_000 && m.sum("weir_commits_total") > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "input not processed in time");
        weir.assert_alive();
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(broker); // kill -9 of the broker
    let t = Instant::now();
    // The bound under test is 3 s; the margin is for a slow machine.
    let st = weir.terminate(Duration::from_secs(3 + 7));
    let took = t.elapsed();
    let log = weir.stderr_tail(400);
    println!("exit {st} after {took:?}");
    assert!(
        st.success()
            || log.contains("shutdown not done within shutdown_timeout (3s); exiting")
            || log.contains("transaction failed"),
        "exit {st} after {took:?}; stderr:\n{log}"
    );
}
