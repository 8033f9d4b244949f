//! `weir reset-offsets` end to end on Apache Kafka (DESIGN.md §1,
//! reprocess): the real binary, a real broker.
//! - Sessions (`key_by` + session window, so through the repartition topic
//!   and the changelog): run to the end, `--to-earliest --execute`, run
//!   again; the sink holds every session twice, and the second run's are
//!   equal to the first's. While the pipeline runs, the reset is refused.
//!   The refusal names the live group's members.
//! - A stateless pipeline: `--to-offset`, `--shift-by` with `--topic` and
//!   `--to-datetime` (the broker's time index, KIP-79) replay exactly the
//!   records from the new offsets.
//!
//! `make test` sets `WEIR_KAFKA`. The plan outputs are printed:
//! `cargo test --test reset -- --nocapture --test-threads=1`

#[path = "common/broker.rs"]
mod broker;
#[path = "common/sessions.rs"]
mod sessions;

use broker::{free_port, Broker, SinkReader, Weir};
use serde_json::Value;
use sessions::{batch_sessions, start, tally, visits, write_config, PIPELINE};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const PARTITIONS: i32 = 4;
const WITHIN: Duration = Duration::from_secs(180);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialize() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// `weir reset-offsets --config CONFIG PIPELINE ARGS…`.
fn reset(config: &Path, pipeline: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("reset-offsets")
        .arg("--config")
        .arg(config)
        .arg(pipeline)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run weir reset-offsets");
    println!(
        "$ weir reset-offsets … {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The plan's rows as (topic, partition, current offset, new offset).
fn rows(stdout: &str) -> Vec<(String, i32, String, i64)> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("TOPIC"))
        .skip(1)
        .take_while(|l| !l.starts_with("state") && !l.starts_with("dry run"))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (
                c[0].to_owned(),
                c[1].parse().unwrap(),
                c[2].to_owned(),
                c[3].parse().unwrap(),
            )
        })
        .collect()
}

fn stop(w: &mut Weir) {
    let st = w.terminate(Duration::from_secs(30));
    assert!(st.success(), "{} exit status after SIGTERM: {st}", w.name);
}

#[test]
fn to_earliest_reprocesses_sessions_to_the_same_results() {
    to_earliest_reprocesses_sessions("at_least_once");
}

/// The same under `exactly_once`: the changelog marker written by the reset
/// is the checkpoint, and the reader is `read_committed`.
#[test]
fn to_earliest_reprocesses_sessions_to_the_same_results_exactly_once() {
    to_earliest_reprocesses_sessions("exactly_once");
}

fn to_earliest_reprocesses_sessions(delivery: &str) {
    let _one = serialize();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    broker.create_topic("visits", PARTITIONS);
    let input = visits(6_000, PARTITIONS);
    let expected = batch_sessions(&input);
    broker::produce_all(&broker, "visits", &input);
    let pipeline = d.join("sessions.yaml");
    std::fs::write(&pipeline, PIPELINE.replace("DELIVERY", delivery)).unwrap();
    let port = free_port();
    let config = write_config(d, &broker.bootstrap(), port, "r0", &pipeline);

    let mut first = start(d, "first", &config, port);
    let mut reader = SinkReader::with_isolation(
        &broker,
        &["sessions"],
        WITHIN,
        delivery == "exactly_once",
        || first.assert_alive(),
    );
    reader.read_until(
        WITHIN,
        |recs| tally(&expected, recs).present == expected.len(),
        || first.assert_alive(),
        |recs| tally(&expected, recs).summary(),
    );
    // Refused while the group has a member.
    let out = reset(&config, &pipeline, &["--to-earliest", "--execute"]);
    assert_eq!(out.status.code(), Some(1), "refused while running");
    let refusal = text(&out.stderr);
    assert!(
        refusal.starts_with(
            "weir reset-offsets: assignments can only be reset if the group `weir.sessions` is inactive, \
             but the current state is Stable with members weir-r0-"
        ) && refusal.ends_with(" (weir-r0, /127.0.0.1); stop every `weir run` of this pipeline first\n"),
        "the refusal names the member: {refusal}"
    );
    stop(&mut first);
    reader.read_to_end(&broker, WITHIN);
    let n1 = reader.records.len();
    let t1 = tally(&expected, &reader.records);
    assert_eq!(
        (t1.present, t1.missing, t1.wrong.len(), t1.repeats),
        (expected.len(), 0, 0, 0),
        "first run: {}",
        t1.summary()
    );

    // Dry run: the plan, nothing changed.
    let out = reset(&config, &pipeline, &["--to-earliest"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let per_partition = (input.len() / PARTITIONS as usize).to_string();
    assert_eq!(
        rows(&stdout),
        (0..PARTITIONS)
            .map(|p| ("visits".to_owned(), p, per_partition.clone(), 0))
            .collect::<Vec<_>>()
    );
    assert!(stdout.ends_with("dry run: nothing changed; add --execute to reset\n"));
    for internal in [
        "weir.sessions.0.repartition: a reset record in each of its 4 partitions",
        "weir.sessions.1.changelog: open windows of the reset partitions deleted",
        "weir.sessions.checkpoint: the checkpoint of each reset partition set to its new offset",
    ] {
        assert!(stdout.contains(internal), "{internal}");
    }

    // Execute: the session still open at the end (the sentinels' user) is
    // deleted from the changelog.
    let out = reset(&config, &pipeline, &["--to-earliest", "--execute"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).ends_with(
            "reset: source offsets committed: 4; repartition partitions moved past a reset record: 4; \
             open windows deleted: 1; changelog markers written: 4; checkpoints written: 8\n"
        ),
        "{}",
        text(&out.stdout)
    );

    let mut second = start(d, "second", &config, port);
    reader.read_until(
        WITHIN,
        |recs| recs.len() >= 2 * n1,
        || second.assert_alive(),
        |recs| tally(&expected, &recs[n1..]).summary(),
    );
    stop(&mut second);
    reader.read_to_end(&broker, WITHIN);
    let t2 = tally(&expected, &reader.records[n1..]);
    println!(
        "sessions, {delivery}: first run {}; after reset-offsets --to-earliest, second run {}",
        t1.summary(),
        t2.summary()
    );
    assert_eq!(
        (t2.present, t2.missing, t2.wrong.len(), t2.repeats),
        (expected.len(), 0, 0, 0),
        "second run: {}",
        t2.summary()
    );
    assert_eq!(
        reader.records.len(),
        2 * n1,
        "the sink holds each result twice"
    );
}

#[test]
fn to_offset_and_shift_by_replay_exactly_the_records_from_there() {
    let _one = serialize();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broker = Broker::kafka(d);
    broker.create_topic("events", 2);
    // Record i of each partition has the Kafka timestamp T0 + i s.
    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let input: Vec<(i32, String, Vec<u8>, i64)> = (0..2)
        .flat_map(|p| {
            (0..20).map(move |i| {
                (
                    p,
                    format!("k{i}"),
                    format!("{{\"p\":{p},\"i\":{i}}}").into_bytes(),
                    T0 + i * 1_000,
                )
            })
        })
        .collect();
    broker::produce_timed(&broker, "events", &input);
    let pipeline = d.join("copy.yaml");
    std::fs::write(
        &pipeline,
        "name: copy\nsource:\n  topics: [events]\n  format: json\n\
         stages:\n  - filter: value.i >= 0\nsinks:\n  - topic: copied\n",
    )
    .unwrap();
    let port = free_port();
    let config = write_config(d, &broker.bootstrap(), port, "r0", &pipeline);
    let ids = |recs: &[broker::SinkRecord]| -> Vec<(i64, i64)> {
        let mut v: Vec<(i64, i64)> = recs
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_str(r.payload.as_deref().unwrap()).unwrap();
                (v["p"].as_i64().unwrap(), v["i"].as_i64().unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let mut reader: Option<SinkReader> = None;
    let mut run = |name: &str, total: usize| -> Vec<(i64, i64)> {
        let mut w = start(d, name, &config, port);
        let r = reader.get_or_insert_with(|| SinkReader::new(&broker, &["copied"], WITHIN, || {}));
        let before = r.records.len();
        r.read_until(
            WITHIN,
            |recs| recs.len() >= total,
            || w.assert_alive(),
            |recs| format!("{} records", recs.len()),
        );
        stop(&mut w);
        r.read_to_end(&broker, WITHIN);
        assert_eq!(r.records.len(), total, "{name}: records in the sink");
        ids(&r.records[before..])
    };
    let all: Vec<(i64, i64)> = (0..2).flat_map(|p| (0..20).map(move |i| (p, i))).collect();
    assert_eq!(run("first", 40), all);

    let out = reset(&config, &pipeline, &["--to-offset", "15", "--execute"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        rows(&text(&out.stdout)),
        vec![
            ("events".to_owned(), 0, "20".to_owned(), 15),
            ("events".to_owned(), 1, "20".to_owned(), 15)
        ]
    );
    let from_15: Vec<(i64, i64)> = (0..2).flat_map(|p| (15..20).map(move |i| (p, i))).collect();
    assert_eq!(run("after-to-offset", 50), from_15);

    let out = reset(
        &config,
        &pipeline,
        &["--shift-by", "-3", "--topic", "events:1", "--execute"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        rows(&text(&out.stdout)),
        vec![("events".to_owned(), 1, "20".to_owned(), 17)]
    );
    assert_eq!(run("after-shift-by", 53), vec![(1, 17), (1, 18), (1, 19)]);

    // The first record at or after 00:00:12.5 is i = 13 in both partitions.
    let out = reset(
        &config,
        &pipeline,
        &["--to-datetime", "2026-01-01T00:00:12.500Z", "--execute"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        rows(&text(&out.stdout)),
        vec![
            ("events".to_owned(), 0, "20".to_owned(), 13),
            ("events".to_owned(), 1, "20".to_owned(), 13)
        ]
    );
    let from_13: Vec<(i64, i64)> = (0..2).flat_map(|p| (13..20).map(move |i| (p, i))).collect();
    assert_eq!(run("after-to-datetime", 67), from_13);
    // Past the last record: the log end (nothing to replay).
    let out = reset(
        &config,
        &pipeline,
        &["--to-datetime", "2026-01-02T00:00:00Z"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        rows(&text(&out.stdout)),
        vec![
            ("events".to_owned(), 0, "20".to_owned(), 20),
            ("events".to_owned(), 1, "20".to_owned(), 20)
        ]
    );
}
