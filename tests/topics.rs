//! Which topics a pipeline reads and writes, end to end on Apache Kafka
//! (DESIGN.md §3):
//! - internal topics are scoped by the consumer group id, so a run under a
//!   new `group_id` starts over from `start_from` with fresh state, as a new
//!   consumer group does for any Kafka consumer, and leaves the first
//!   group's state alone;
//! - a `pattern:` source takes as upstream partitions of its repartition
//!   exactly the topics the pattern matched: an unrelated busy topic and
//!   Kafka's own `__consumer_offsets` beside it do not hold its windows
//!   back.
//!
//! `cargo test --test topics -- --nocapture` (`make test` sets `WEIR_KAFKA`).

#[path = "common/broker.rs"]
mod broker;
#[path = "common/sessions.rs"]
mod sessions;

use broker::{free_port, Broker, SinkReader, Weir};
use serde_json::Value;
use sessions::{
    batch_sessions, batch_tumbling, start, tally, visits, write_config, PIPELINE, TUMBLING_PIPELINE,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(180);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialize() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn stop(w: &mut Weir) {
    let st = w.terminate(Duration::from_secs(30));
    assert!(st.success(), "{} exit status after SIGTERM: {st}", w.name);
}

/// Topic names in the broker's metadata.
fn topic_names(broker: &Broker) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = broker.client_config().create().expect("metadata client");
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let mut v: Vec<String> = md.topics().iter().map(|t| t.name().to_owned()).collect();
    v.sort();
    v
}

/// The value of `key` in the configuration of `topic`, as the broker
/// describes it (DescribeConfigs).
fn topic_config(broker: &Broker, topic: &str, key: &str) -> Option<String> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        broker.client_config().create().expect("admin client");
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let res = futures::executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts),
    )
    .expect("describe configs");
    let resource = res
        .into_iter()
        .next()
        .expect("one resource")
        .expect("topic configs");
    resource.get(key).and_then(|e| e.value.clone())
}

/// The issue a user hit: a filter + transform pipeline run to the end,
/// then again under a new `group_id` on the same input. The second run
/// reprocesses everything (it had produced nothing: it restored the first
/// group's checkpoints), and its checkpoints live in its own topic.
#[test]
fn a_new_group_id_reprocesses_a_stateless_pipeline_from_the_start() {
    let _one = serialize();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    broker.create_topic("events", 2);
    broker.create_topic("copied", 2);
    let input: Vec<(i32, String, Vec<u8>)> = (0..2)
        .flat_map(|p| {
            (0..50).map(move |i| {
                let v = format!("{{\"p\":{p},\"i\":{i},\"status\":{}}}", 200 + (i % 5) * 100);
                (p, format!("k{i}"), v.into_bytes())
            })
        })
        .collect();
    broker::produce_all(&broker, "events", &input);
    let text = "name: copy\nsource:\n  topics: [events]\n  format: json\n\
                stages:\n  - filter: value.status == 200\n  - transform:\n      set: {n: \"value.i * 2\"}\n\
                sinks:\n  - topic: copied\n";
    let wanted: Vec<(i64, i64, i64)> = (0..2)
        .flat_map(|p| (0..50).filter(|i| i % 5 == 0).map(move |i| (p, i, i * 2)))
        .collect();
    let ids = |recs: &[broker::SinkRecord]| -> Vec<(i64, i64, i64)> {
        let mut v: Vec<(i64, i64, i64)> = recs
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_str(r.payload.as_deref().unwrap()).unwrap();
                (
                    v["p"].as_i64().unwrap(),
                    v["i"].as_i64().unwrap(),
                    v["n"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let mut reader = SinkReader::new(&broker, &["copied"], WITHIN, || {});
    let mut run = |group: Option<&str>, label: &str, total: usize| {
        let pipeline = d.join(format!("{label}-pipeline.yaml"));
        let body = match group {
            Some(g) => text.replace("name: copy\n", &format!("name: copy\ngroup_id: {g}\n")),
            None => text.to_owned(),
        };
        std::fs::write(&pipeline, body).unwrap();
        let port = free_port();
        let config = write_config(d, &broker.bootstrap(), port, label, &pipeline);
        let mut w = start(d, label, &config, port);
        let before = reader.records.len();
        reader.read_until(
            WITHIN,
            |recs| recs.len() >= total,
            || w.assert_alive(),
            |recs| format!("{} records", recs.len()),
        );
        stop(&mut w);
        reader.read_to_end(&broker, WITHIN);
        assert_eq!(reader.records.len(), total, "{label}: records in the sink");
        ids(&reader.records[before..])
    };
    assert_eq!(run(None, "first", 20), wanted, "first run, group weir.copy");
    assert_eq!(
        run(Some("copy.v2"), "second", 40),
        wanted,
        "a new group id reprocesses everything"
    );
    let names = topic_names(&broker);
    for t in ["weir.copy.checkpoint", "copy.v2.checkpoint"] {
        assert!(names.iter().any(|n| n == t), "{t} in {names:?}");
    }
}

/// Two groups run one windowed pipeline file (repartition topic,
/// changelog, checkpoints) one after the other on the same input: each
/// gives every session exactly once, in internal topics of its own.
#[test]
fn two_group_ids_of_one_windowed_pipeline_never_share_state() {
    let _one = serialize();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    broker.create_topic("visits", 4);
    broker.create_topic("sessions", 4);
    let input = visits(6_000, 4);
    let expected = batch_sessions(&input);
    broker::produce_all(&broker, "visits", &input);
    let mut reader = SinkReader::new(&broker, &["sessions"], WITHIN, || {});
    for (i, group) in ["team-a.sessions", "team-b.sessions"].iter().enumerate() {
        let pipeline = d.join(format!("sessions-{i}.yaml"));
        let text = PIPELINE.replace("DELIVERY", "at_least_once").replace(
            "name: sessions\n",
            &format!("name: sessions\ngroup_id: {group}\n"),
        );
        std::fs::write(&pipeline, text).unwrap();
        let port = free_port();
        let config = write_config(d, &broker.bootstrap(), port, &format!("g{i}"), &pipeline);
        let mut w = start(d, group, &config, port);
        let before = reader.records.len();
        reader.read_until(
            WITHIN,
            |recs| tally(&expected, &recs[before..]).present == expected.len(),
            || w.assert_alive(),
            |recs| tally(&expected, &recs[before..]).summary(),
        );
        stop(&mut w);
        reader.read_to_end(&broker, WITHIN);
        let t = tally(&expected, &reader.records[before..]);
        println!("group {group}: {}", t.summary());
        assert_eq!(
            (t.present, t.missing, t.wrong.len(), t.repeats),
            (expected.len(), 0, 0, 0),
            "group {group}: {}",
            t.summary()
        );
    }
    let names = topic_names(&broker);
    for g in ["team-a.sessions", "team-b.sessions"] {
        for suffix in ["checkpoint", "0.repartition", "1.changelog"] {
            let t = format!("{g}.{suffix}");
            assert!(names.contains(&t), "{t} in {names:?}");
        }
    }
    assert!(
        !names.iter().any(|n| n.starts_with("weir.sessions")),
        "no topic under the default group: {names:?}"
    );
    // Repartition records carry event time as their timestamp (here from
    // 2023): time retention would delete them before they are read.
    assert_eq!(
        topic_config(&broker, "team-a.sessions.0.repartition", "retention.ms").as_deref(),
        Some("-1")
    );
    assert_eq!(
        topic_config(&broker, "team-a.sessions.1.changelog", "cleanup.policy").as_deref(),
        Some("compact")
    );
}

/// A `pattern:` source (`^views\..*`, two topics) + `key_by` + tumbling
/// window, with an unrelated topic busy beside it: every window closes
/// and equals the batch reference.
#[test]
fn a_pattern_source_before_a_repartition_closes_its_windows() {
    let _one = serialize();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    broker.create_topic("views.a", 2);
    broker.create_topic("views.b", 2);
    broker.create_topic("clicks", 3);
    let input = visits(8_000, 4);
    let expected = batch_tumbling(&input);
    let (a, b): (Vec<_>, Vec<_>) = input.iter().cloned().partition(|(p, _, _)| *p < 2);
    let b: Vec<_> = b.into_iter().map(|(p, k, v)| (p - 2, k, v)).collect();
    broker::produce_all(&broker, "views.a", &a);
    broker::produce_all(&broker, "views.b", &b);
    // The busy neighbour: records keep arriving until the test ends.
    let done = Arc::new(AtomicBool::new(false));
    let busy = {
        let (cfg, done) = (broker.client_config(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let chunk: Vec<_> = (0..100)
                    .map(|i| ((n + i) % 3, format!("c{i}"), b"{\"click\":1}".to_vec()))
                    .collect();
                broker::produce_to(cfg.clone(), "clicks", &chunk);
                n += 1;
                // Pacing of the neighbour's traffic, not synchronisation.
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let pipeline = d.join("pattern.yaml");
    let text = TUMBLING_PIPELINE
        .replace("DELIVERY", "at_least_once")
        .replace("topics: [visits]", "pattern: '^views\\..*'");
    std::fs::write(&pipeline, text).unwrap();
    let port = free_port();
    let config = write_config(d, &broker.bootstrap(), port, "r0", &pipeline);
    let mut w = start(d, "pattern", &config, port);
    let mut reader = SinkReader::new(&broker, &["visits-per-minute"], WITHIN, || {});
    reader.read_until(
        WITHIN,
        |recs| tally(&expected, recs).present == expected.len(),
        || w.assert_alive(),
        |recs| tally(&expected, recs).summary(),
    );
    stop(&mut w);
    done.store(true, Ordering::Relaxed);
    busy.join().expect("busy neighbour");
    reader.read_to_end(&broker, WITHIN);
    let t = tally(&expected, &reader.records);
    println!("pattern source: {}", t.summary());
    assert_eq!(
        (t.present, t.missing, t.wrong.len(), t.repeats),
        (expected.len(), 0, 0, 0),
        "{}",
        t.summary()
    );
}
