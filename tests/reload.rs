//! Pipeline reload on SIGHUP, end to end on Apache Kafka: `weir run` with a
//! pipelines directory; a changed file is validated and its pipeline
//! restarted (the new version continues from the committed offsets); an
//! invalid file is reported with its location and the running version kept.
//!
//! Needs `WEIR_KAFKA` (set by `make test`):
//! `cargo test --test reload -- --nocapture`

#[path = "common/broker.rs"]
mod broker;
#[path = "common/sessions.rs"]
mod sessions;

use broker::{free_port, Broker, SinkReader, Weir};
use serde_json::Value;
use sessions::{start, write_config};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const WITHIN: Duration = Duration::from_secs(120);

fn pipeline(sink: &str, extra_stage: &str) -> String {
    format!(
        "name: copy\nsource:\n  topics: [events]\n  format: json\n\
         stages:\n  - filter: value.i >= 0\n{extra_stage}sinks:\n  - topic: {sink}\n"
    )
}

fn produce(broker: &Broker, from: i64, to: i64) {
    let recs: Vec<(i32, String, Vec<u8>)> = (from..to)
        .map(|i| (0, format!("k{i}"), format!("{{\"i\":{i}}}").into_bytes()))
        .collect();
    broker::produce_all(broker, "events", &recs);
}

fn hangup(w: &Weir) {
    let st = Command::new("kill")
        .args(["-HUP", &w.pid()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -HUP failed");
}

/// Waits until `weir_config_reloads_total{result}` reaches `n`.
fn reloads(w: &mut Weir, result: &str, n: u64) {
    let deadline = Instant::now() + WITHIN;
    let series = format!("result=\"{result}\"");
    loop {
        let m = w.metrics();
        let got: u64 = m
            .samples
            .iter()
            .filter(|((name, l), _)| name == "weir_config_reloads_total" && l.contains(&series))
            .map(|(_, v)| *v as u64)
            .sum();
        if got >= n {
            return;
        }
        w.assert_alive();
        assert!(Instant::now() < deadline, "no {result} reload counted");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the stderr log contains `needle`.
fn logged(w: &mut Weir, needle: &str) -> String {
    let deadline = Instant::now() + WITHIN;
    loop {
        let log = std::fs::read_to_string(&w.stderr).unwrap_or_default();
        if log.contains(needle) {
            return log;
        }
        w.assert_alive();
        assert!(Instant::now() < deadline, "`{needle}` not logged");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the sinks until `topic` holds `n` records.
fn read_until(reader: &mut SinkReader, w: &mut Weir, topic: &str, n: usize) {
    reader.read_until(
        WITHIN,
        |recs| recs.iter().filter(|r| r.topic == topic).count() >= n,
        || w.assert_alive(),
        |recs| format!("{} records", recs.len()),
    );
}

fn values(r: &SinkReader, topic: &str) -> Vec<Value> {
    r.records
        .iter()
        .filter(|x| x.topic == topic)
        .map(|x| serde_json::from_str(x.payload.as_deref().unwrap()).unwrap())
        .collect()
}

#[test]
fn sighup_restarts_changed_pipelines_and_keeps_the_running_one_on_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    broker.create_topic("events", 1);
    broker.create_topic("out-v1", 1);
    broker.create_topic("out-v2", 1);
    let pipelines = d.join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    let file = pipelines.join("copy.yaml");
    std::fs::write(&file, pipeline("out-v1", "")).unwrap();
    let port = free_port();
    let config = write_config(d, &broker.bootstrap(), port, "r0", Path::new(&pipelines));
    let mut w = start(d, "weir", &config, port);
    let mut reader = SinkReader::new(&broker, &["out-v1", "out-v2"], WITHIN, || {});

    produce(&broker, 0, 5);
    read_until(&mut reader, &mut w, "out-v1", 5);

    // A valid change: the new version writes to out-v2 and marks records.
    std::fs::write(
        &file,
        pipeline("out-v2", "  - transform:\n      set: {version: \"2\"}\n"),
    )
    .unwrap();
    hangup(&w);
    reloads(&mut w, "success", 1);
    logged(&mut w, "new version starting");
    produce(&broker, 5, 10);
    read_until(&mut reader, &mut w, "out-v2", 5);

    // An invalid change: reported with its location, the running version kept.
    std::fs::write(&file, pipeline("out-v3", "  - filter: value.i >=\n")).unwrap();
    hangup(&w);
    reloads(&mut w, "failure", 1);
    let log = logged(&mut w, "reload rejected");
    let at = format!(
        "weir: reload rejected:\n{}:7:13: stages[1].filter: CEL syntax error at 1:11",
        file.display()
    );
    assert!(log.contains(&at), "the error names {at}…:\n{log}");
    produce(&broker, 10, 15);
    read_until(&mut reader, &mut w, "out-v2", 10);

    let st = w.terminate(Duration::from_secs(30));
    assert!(st.success(), "exit status after SIGTERM: {st}");
    reader.read_to_end(&broker, WITHIN);
    let v1: Vec<i64> = values(&reader, "out-v1")
        .iter()
        .map(|v| v["i"].as_i64().unwrap())
        .collect();
    assert_eq!(v1, (0..5).collect::<Vec<_>>(), "the first version's output");
    let v2: Vec<(i64, i64)> = values(&reader, "out-v2")
        .iter()
        .map(|v| {
            (
                v["i"].as_i64().unwrap(),
                v["version"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        v2,
        (5..15).map(|i| (i, 2)).collect::<Vec<_>>(),
        "the second version's output (version = 2), kept through the invalid reload"
    );
}
