//! Integration tests on librdkafka's in-process mock cluster: whole
//! pipelines from input topic to sink topic, with exact expected output.

mod mock_support;

use mock_support::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::http::Health;
use weir::kafka::embedded::Embedded;
use weir::metrics::Metrics;
use weir::plan::Plan;
use weir::runtime::daemon::shutdown_channel;
use weir::runtime::run_pipeline;

const SAMPLE: &str = include_str!("../pipelines/data/flights-2013-01-01-02.jsonl");
const FLIGHTS: &str = include_str!("../pipelines/flight-delays.yaml");

/// The hourly windows of the sample, computed independently: non-cancelled
/// flights grouped by (origin, hour of dep_ts), summing in file order.
fn expected_flight_windows() -> Vec<Value> {
    let mut acc: BTreeMap<(i64, String), (i64, f64, i64, i64)> = BTreeMap::new();
    for line in SAMPLE.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["dep_time"].is_null() {
            continue;
        }
        let (ts, delay) = (
            v["dep_ts"].as_i64().unwrap(),
            v["dep_delay"].as_i64().unwrap(),
        );
        let start = ts.div_euclid(3_600_000) * 3_600_000;
        let e = acc
            .entry((start, v["origin"].as_str().unwrap().to_owned()))
            .or_insert((0, 0.0, i64::MIN, 0));
        e.0 += 1;
        e.1 += delay as f64;
        e.2 = e.2.max(delay);
        e.3 += i64::from(delay > 15);
    }
    acc.into_iter()
        .map(|((start, origin), (n, sum, max, delayed))| {
            json!({"key": origin, "window": {"start": start, "end": start + 3_600_000},
                   "flights": n, "avg_dep_delay": sum / n as f64, "max_dep_delay": max, "delayed": delayed})
        })
        .collect()
}

fn window_order(v: &Value) -> (i64, String) {
    (
        v["window"]["start"].as_i64().unwrap(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flights_sample_gives_exact_hourly_windows() {
    let plan = plan(FLIGHTS);
    let b = cluster(&plan, 1);
    let input: Vec<_> = SAMPLE.lines().map(|l| (0, None, l.to_owned())).collect();
    produce(&b, "flights", &input);
    let summary = run_to_end(&plan, &b, "flights", 1)
        .await
        .expect("pipeline runs");

    let expected = expected_flight_windows();
    let got = read(
        &b,
        "departures-hourly",
        expected.len(),
        Duration::from_secs(30),
    );
    let got: Vec<Value> = got
        .into_iter()
        .map(|(k, v)| {
            assert_eq!(k.as_deref(), v["key"].as_str(), "record key is the origin");
            v
        })
        .collect();
    assert!(
        got.windows(2)
            .all(|w| w[0]["window"]["start"].as_i64() <= w[1]["window"]["start"].as_i64()),
        "windows come out in end order"
    );
    let mut sorted = got.clone();
    sorted.sort_by_key(window_order);
    assert_eq!(sorted, expected);
    assert_eq!(
        count(&b, "departures-hourly") as usize,
        expected.len(),
        "no extra records"
    );

    let alerts: Vec<Value> = expected
        .iter()
        .filter(|v| v["avg_dep_delay"].as_f64().unwrap() > 30.0)
        .cloned()
        .collect();
    let mut got_alerts: Vec<Value> =
        read(&b, "delay-alerts", alerts.len(), Duration::from_secs(10))
            .into_iter()
            .map(|(_, v)| v)
            .collect();
    got_alerts.sort_by_key(window_order);
    assert_eq!(got_alerts, alerts);

    let cancelled = SAMPLE
        .lines()
        .filter(|l| l.contains("\"dep_time\":null"))
        .count() as u64;
    assert_eq!(summary.records_in, 1785);
    assert_eq!(summary.filtered, cancelled);
    assert_eq!(summary.records_out, 1785 - cancelled);
    assert_eq!((summary.late, summary.errors), (0, 0));
    assert_eq!(summary.produced as usize, expected.len() + alerts.len());
}

const ENRICH: &str = "name: enrich
source: {topics: [events]}
stages:
  - filter: value.n % 3 != 0
  - transform:
      set: {double: value.n * 2}
      drop: [$.pad]
sinks: [{topic: enriched}]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_partitions_and_their_union_is_exact() {
    let plan = plan(ENRICH);
    let b = cluster(&plan, 4);
    let (tx, tasks) = start_members(&plan, &b, 2).await;
    let input: Vec<_> = (0..400)
        .map(|n| {
            (
                n % 4,
                Some(format!("k{n}")),
                json!({"n": n, "pad": "x"}).to_string(),
            )
        })
        .collect();
    produce(&b, "events", &input);
    let expected: Vec<Value> = (0..400i64)
        .filter(|n| n % 3 != 0)
        .map(|n| json!({"n": n, "double": n * 2}))
        .collect();
    let mut got: Vec<Value> = read(&b, "enriched", expected.len(), Duration::from_secs(60))
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    tx.send(true).unwrap();
    let mut per_member = Vec::new();
    for t in tasks {
        per_member.push(t.await.unwrap().expect("member stops cleanly"));
    }
    got.sort_by_key(|v| v["n"].as_i64());
    assert_eq!(got, expected);
    assert_eq!(
        count(&b, "enriched") as usize,
        expected.len(),
        "no duplicates without a crash"
    );
    assert!(
        per_member.iter().all(|s| s.records_in > 0),
        "both members processed partitions: {per_member:?}"
    );
    assert_eq!(per_member.iter().map(|s| s.records_in).sum::<u64>(), 400);
}

const CLICKS: &str = "name: clicks
source:
  topics: [clicks]
  event_time: {path: $.ts, unit: ms}
  watermark: {max_out_of_orderness: 10s}
stages:
  - key_by: value.user
  - window:
      hopping: {size: 2m, advance: 1m}
      aggregate:
        n: count()
        total: sum(value.amount)
        first_ts: min(value.ts)
sinks: [{topic: clicks-per-user}]
";

/// Seeded events: 5 users, one event per 500 ms, each up to 8 s early (less
/// than the 10 s watermark bound, so none is late).
fn clicks(seed: u64, n: usize) -> Vec<Value> {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    let t0 = 1_700_000_040_000i64;
    (0..n as i64)
        .map(|i| {
            let jitter = (next() % 8_000) as i64;
            json!({"user": format!("u{}", next() % 5), "ts": t0 + i * 500 - jitter, "amount": (next() % 100) as i64})
        })
        .collect()
}

fn batch_hopping(events: &[Value]) -> HashMap<(i64, String), Value> {
    let mut acc: BTreeMap<(i64, String), (i64, i64, i64)> = BTreeMap::new();
    for e in events {
        let t = e["ts"].as_i64().unwrap();
        let last = t.div_euclid(60_000) * 60_000;
        for start in [last - 60_000, last] {
            let a = acc
                .entry((start, e["user"].as_str().unwrap().to_owned()))
                .or_insert((0, 0, i64::MAX));
            a.0 += 1;
            a.1 += e["amount"].as_i64().unwrap();
            a.2 = a.2.min(t);
        }
    }
    acc.into_iter()
        .map(|((start, user), (n, total, first))| {
            let v = json!({"key": user, "window": {"start": start, "end": start + 120_000}, "n": n, "total": total, "first_ts": first});
            ((start, user), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_stream_resumes_from_checkpoint_without_partial_windows() {
    let plan = plan(CLICKS);
    let b = cluster(&plan, 1);
    let events = clicks(7, 2_000);
    let as_input = |evs: &[Value]| {
        evs.iter()
            .map(|e| (0, None, e.to_string()))
            .collect::<Vec<_>>()
    };

    // First run: half the input, then a graceful stop.
    produce(&b, "clicks", &as_input(&events[..1_000]));
    run_until_read(&plan, &b, 1_000).await;
    let after_first = count(&b, "clicks-per-user");
    assert!(after_first > 0, "some windows closed in the first run");

    // Second run: the rest, to the end, windows flushed.
    produce(&b, "clicks", &as_input(&events[1_000..]));
    let second = run_to_end(&plan, &b, "clicks", 1)
        .await
        .expect("second run");
    assert_eq!(
        second.records_in, 1_000,
        "open windows came back from the changelog: the second run reads only the second half"
    );
    assert!(
        count(&b, "weir.clicks.1.changelog") > 0,
        "window state was written to the changelog"
    );

    let expected = batch_hopping(&events);
    let got = read(&b, "clicks-per-user", usize::MAX, Duration::from_secs(3));
    let got: Vec<Value> = got.into_iter().map(|(_, v)| v).collect();
    assert_each_window_once(&expected, &got, "a graceful restart repeats nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_reports_not_ready_and_resumes_without_loss() {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    let plan = plan(ENRICH);
    let b = cluster(&plan, 1);
    let health = Arc::new(Health::default());
    let (tx, rx) = shutdown_channel();
    let task = tokio::spawn(run_pipeline(
        Arc::clone(&plan),
        options(&b, None),
        Metrics::new(),
        Arc::clone(&health),
        rx,
    ));
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let batch = |from: i64| {
        (from..from + 100)
            .map(|n| (0, None, json!({"n": n}).to_string()))
            .collect::<Vec<_>>()
    };
    produce(&b, "events", &batch(0));
    wait("first outputs", &|| count(&b, "enriched") >= 66);
    assert_eq!(health.check(), Ok(()));

    b.broker_down().unwrap();
    wait("not ready while the broker is down", &|| {
        health.check().is_err()
    });
    b.broker_up().unwrap();
    produce(&b, "events", &batch(100));
    wait("outputs after the outage", &|| count(&b, "enriched") >= 133);
    wait("ready again", &|| health.check().is_ok());
    tx.send(true).unwrap();
    task.await.unwrap().expect("pipeline survives the outage");

    let expected: Vec<Value> = (0..200i64)
        .filter(|n| n % 3 != 0)
        .map(|n| json!({"n": n, "double": n * 2}))
        .collect();
    let mut got: Vec<Value> = read(&b, "enriched", usize::MAX, Duration::from_secs(3))
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    got.sort_by_key(|v| v["n"].as_i64());
    got.dedup();
    assert_eq!(got, expected, "nothing lost (identical repeats allowed)");
}

const STRICT: &str = "name: strict
source: {topics: [orders]}
stages:
  - transform:
      set: {cents: int(value.price * 100.0)}
sinks: [{topic: priced}]
errors: {policy: dlq, dlq_topic: orders.dlq}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dlq_with_original_bytes_and_coordinates() {
    let plan = plan(STRICT);
    let b = cluster(&plan, 1);
    produce(
        &b,
        "orders",
        &[
            (0, Some("a".into()), r#"{"price": 1.5}"#.into()),
            (0, Some("b".into()), "{not json".into()),
            (0, Some("c".into()), r#"{"price": "cheap"}"#.into()),
            (0, Some("d".into()), r#"{"price": 2.25}"#.into()),
        ],
    );
    let s = run_to_end(&plan, &b, "orders", 1)
        .await
        .expect("bad records do not stop the pipeline");
    assert_eq!((s.records_in, s.records_out, s.errors, s.dlq), (4, 2, 2, 2));
    let priced: Vec<Value> = read(&b, "priced", 2, Duration::from_secs(10))
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        priced,
        vec![
            json!({"price": 1.5, "cents": 150}),
            json!({"price": 2.25, "cents": 225})
        ]
    );

    let dlq = read_full(&b, "orders.dlq", 2, Duration::from_secs(10));
    assert_eq!(dlq.len(), 2);
    assert_eq!(
        (dlq[0].key.as_deref(), dlq[0].payload.as_slice()),
        (Some("b"), b"{not json".as_slice())
    );
    assert_eq!(
        (dlq[1].key.as_deref(), dlq[1].payload.as_slice()),
        (Some("c"), br#"{"price": "cheap"}"#.as_slice())
    );
    let header = |i: usize, k: &str| {
        dlq[i]
            .headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header(0, "weir.stage"), "source");
    assert!(
        header(0, "weir.error").starts_with("payload is not valid JSON: key must be a string"),
        "{}",
        header(0, "weir.error")
    );
    assert_eq!(header(1, "weir.stage"), "0:transform");
    assert!(
        header(1, "weir.error").starts_with("`int(value.price * 100.0)`:"),
        "{}",
        header(1, "weir.error")
    );
    for (i, offset) in [(0, "1"), (1, "2")] {
        assert_eq!(header(i, "weir.source.topic"), "orders");
        assert_eq!(header(i, "weir.source.partition"), "0");
        assert_eq!(header(i, "weir.source.offset"), offset);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_fail_stops_the_pipeline_naming_the_record() {
    let plan = plan(&STRICT.replace("{policy: dlq, dlq_topic: orders.dlq}", "{policy: fail}"));
    let b = cluster(&plan, 1);
    produce(
        &b,
        "orders",
        &[
            (0, None, r#"{"price": 1.5}"#.into()),
            (0, None, r#"{"price": "x"}"#.into()),
        ],
    );
    let err = run_to_end(&plan, &b, "orders", 1)
        .await
        .expect_err("policy fail stops the pipeline");
    let text = err.to_string();
    assert!(
        text.starts_with("pipeline `strict` stopped (errors.policy: fail): record orders/0@1 failed in stage 0:transform: `int(value.price * 100.0)`:"),
        "{text}"
    );
    // The offset stays at the bad record: a restart stops on it again and
    // does not repeat the good record before it.
    let again = run_to_end(&plan, &b, "orders", 1)
        .await
        .expect_err("the restart meets the bad record again");
    assert_eq!(again.to_string(), text);
    assert_eq!(count(&b, "priced"), 1);
}

const VISITS: &str = "name: visits
source:
  topics: [visits]
  event_time: {path: $.ts, unit: ms}
  watermark: {max_out_of_orderness: 5s}
stages:
  - key_by: value.user
  - window:
      session: {gap: 30s}
      aggregate:
        n: count()
        total: sum(value.amount)
        last_page: last(value.page)
sinks: [{topic: sessions}]
";

/// Visits of 8 users spread round-robin over 4 partitions (not by user),
/// time-ordered within each partition, then a sentinel per partition an
/// hour later that closes every session.
fn visits() -> Vec<(i32, Option<String>, String)> {
    let mut t = 1_700_000_000_000i64;
    let mut v: Vec<(i32, Option<String>, String)> = (0..1_200i64)
        .map(|n| {
            t += (n * 7919) % 3_000;
            if n % 150 == 149 {
                t += 60_000; // every user's session ends
            }
            let user = format!("u{}", (n * 5) % 8);
            let e = json!({"user": user, "ts": t, "amount": n % 10, "page": format!("p{n}")});
            ((n % 4) as i32, Some(user), e.to_string())
        })
        .collect();
    for p in 0..4 {
        let e = json!({"user": "zz", "ts": t + 3_600_000, "amount": 0, "page": "end"});
        v.push((p, Some("zz".into()), e.to_string()));
    }
    v
}

/// Sessions computed in one batch: per user, events sorted by time, split
/// where the gap exceeds 30 s.
fn batch_sessions(input: &[(i32, Option<String>, String)]) -> BTreeMap<(String, i64), Value> {
    let mut by_user: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (_, _, e) in input {
        let v: Value = serde_json::from_str(e).unwrap();
        by_user
            .entry(v["user"].as_str().unwrap().to_owned())
            .or_default()
            .push(v);
    }
    let mut out = BTreeMap::new();
    for (user, mut evs) in by_user.into_iter().filter(|(u, _)| u != "zz") {
        evs.sort_by_key(|e| e["ts"].as_i64());
        let mut session: Vec<Value> = Vec::new();
        let mut emit = |s: &mut Vec<Value>| {
            if let (Some(f), Some(l)) = (s.first(), s.last()) {
                let start = f["ts"].as_i64().unwrap();
                let total: i64 = s.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
                out.insert(
                    (user.clone(), start),
                    json!({"key": user, "window": {"start": start, "end": l["ts"].as_i64().unwrap() + 30_000},
                           "n": s.len(), "total": total, "last_page": l["page"]}),
                );
            }
            s.clear();
        };
        for e in evs {
            if session
                .last()
                .is_some_and(|l| e["ts"].as_i64().unwrap() - l["ts"].as_i64().unwrap() > 30_000)
            {
                emit(&mut session);
            }
            session.push(e);
        }
        emit(&mut session);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repartition_makes_session_windows_exact_with_keys_spread_over_partitions() {
    let plan = plan(VISITS);
    assert_eq!(plan.repartition_topic(), Some("weir.visits.0.repartition"));
    let b = cluster(&plan, 4);
    let (tx, tasks) = start_members(&plan, &b, 2).await;
    let input = visits();
    produce(&b, "visits", &input);
    let expected = batch_sessions(&input);
    assert_eq!(expected.len(), 65, "8 or 9 sessions of each of 8 users");
    let got = read(&b, "sessions", expected.len(), Duration::from_secs(60));
    tx.send(true).unwrap();
    let mut per_member = Vec::new();
    for t in tasks {
        per_member.push(t.await.unwrap().expect("member stops cleanly"));
    }
    let got: BTreeMap<(String, i64), Value> = got
        .into_iter()
        .map(|(_, v)| {
            let k = (
                v["key"].as_str().unwrap().to_owned(),
                v["window"]["start"].as_i64().unwrap(),
            );
            (k, v)
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "one result per session");
    for (k, want) in &expected {
        assert_eq!(got.get(k), Some(want), "session {k:?}");
    }
    assert_eq!(
        count(&b, "sessions") as usize,
        expected.len(),
        "no duplicates without a crash"
    );
    let late: u64 = per_member.iter().map(|s| s.late).sum();
    assert_eq!(late, 0, "markers keep on-time records from looking late");
    assert!(
        per_member.iter().all(|s| s.records_in > 0),
        "both members processed partitions: {per_member:?}"
    );
    assert_eq!(per_member.iter().map(|s| s.records_in).sum::<u64>(), 1_204);
}

/// The mock cluster does not fence (a second `InitProducerId` of a
/// transactional id gets a new producer id); fencing after `kill -9` is
/// tested on Tansu.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_restart_gives_read_committed_readers_each_window_once() {
    let plan = plan(&CLICKS.replace("sinks:", "delivery: exactly_once\nsinks:"));
    let b = cluster(&plan, 1);
    let events = clicks(11, 2_000);
    let input: Vec<_> = events.iter().map(|e| (0, None, e.to_string())).collect();

    // First run: half the input in transactions, then a graceful stop.
    produce(&b, "clicks", &input[..1_000]);
    run_until_read(&plan, &b, 1_000).await;

    // Second run, same instance id: the rest, to the end, windows flushed.
    produce(&b, "clicks", &input[1_000..]);
    let second = run_to_end(&plan, &b, "clicks", 1)
        .await
        .expect("second run");
    assert_eq!(second.records_in, 1_000, "resumed at the committed offsets");

    let expected = batch_hopping(&events);
    let got = read_committed(
        &b,
        "clicks-per-user",
        expected.len() + 1,
        Duration::from_secs(5),
    );
    assert_each_window_once(
        &expected,
        &got,
        "read_committed sees each window exactly once",
    );
}

/// Every record of `got` is a whole, correct window of `expected` (by
/// window start and key), every window is there, and none twice (`once`
/// says why not).
fn assert_each_window_once(expected: &HashMap<(i64, String), Value>, got: &[Value], once: &str) {
    let mut seen: HashMap<(i64, String), usize> = HashMap::new();
    for v in got {
        let k = (
            v["window"]["start"].as_i64().unwrap(),
            v["key"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            expected.get(&k),
            Some(v),
            "every output is a whole, correct window"
        );
        *seen.entry(k).or_default() += 1;
    }
    assert_eq!(seen.len(), expected.len(), "every window is emitted");
    assert!(seen.values().all(|n| *n == 1), "{once}");
}

/// Runs `plan` until it has read `n` records, then stops it gracefully.
async fn run_until_read(plan: &Arc<Plan>, b: &Embedded, n: u64) {
    let metrics = Metrics::new();
    let (tx, rx) = shutdown_channel();
    let run = tokio::spawn(run_pipeline(
        Arc::clone(plan),
        options(b, None),
        metrics.clone(),
        Arc::new(Health::default()),
        rx,
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while metrics.records_in.with_label_values(&[&plan.name]).get() < n {
        assert!(Instant::now() < deadline, "the run did not read its input");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(true).unwrap();
    run.await.unwrap().expect("the run stops cleanly");
}

type Member = tokio::task::JoinHandle<Result<weir::runtime::Summary, weir::runtime::RuntimeError>>;

/// Starts `n` members of `plan`'s group, each after the previous one has
/// its assignment; they stop when the returned sender sends `true`.
async fn start_members(
    plan: &Arc<Plan>,
    b: &Embedded,
    n: usize,
) -> (tokio::sync::watch::Sender<bool>, Vec<Member>) {
    let (tx, _) = shutdown_channel();
    let health: Vec<Arc<Health>> = (0..n).map(|_| Arc::new(Health::default())).collect();
    let mut tasks = Vec::new();
    for h in &health {
        let (p, o, h, rx) = (
            Arc::clone(plan),
            options(b, None),
            Arc::clone(h),
            tx.subscribe(),
        );
        tasks.push(tokio::spawn(run_pipeline(p, o, Metrics::new(), h, rx)));
        let deadline = Instant::now() + Duration::from_secs(30);
        while health.iter().take(tasks.len()).any(|h| h.check().is_err()) {
            assert!(Instant::now() < deadline, "members did not join");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    (tx, tasks)
}
