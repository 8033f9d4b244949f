//! Stream–table joins run by the runtime (`weir run`'s loop) on the mock
//! cluster (DESIGN.md §7): a table topic read before any stream record is
//! joined (T1), a stream record ahead of the table held and not committed
//! past (T4), joined after a restart with the version that arrived after it.

mod mock_support;

use mock_support::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::http::Health;
use weir::metrics::Metrics;
use weir::plan::Plan;
use weir::runtime::daemon::shutdown_channel;
use weir::runtime::run_pipeline;

const RATES: &str = r#"
name: priced
source:
  topics: [orders]
  format: json
  event_time: {path: $.ts, unit: ms}
tables:
  rates:
    topic: rates
    key: value.cur
    event_time: {path: $.ts, unit: ms}
    watermark: {idle_timeout: 1h}
stages:
  - join: {table: rates, on: value.cur, type: inner, time: event, into: rate}
  - transform:
      select: [$.id, $.rate.rate]
sinks:
  - topic: priced
"#;

/// The offset the pipeline's group committed for `orders/0` (-1: none).
fn committed(b: &weir::kafka::embedded::Embedded, plan: &Plan) -> i64 {
    let c: BaseConsumer = config(b)
        .set("group.id", &plan.group_id)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("orders", 0);
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    match got.find_partition("orders", 0).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => o,
        _ => -1,
    }
}

fn held(m: &Metrics, plan: &Plan) -> i64 {
    m.join_held_records.with_label_values(&[&plan.name]).get()
}

fn order(id: i64, ts: i64) -> (i32, Option<String>, String) {
    (
        0,
        None,
        json!({"id": id, "cur": "EUR", "ts": ts}).to_string(),
    )
}

fn rate(rate: f64, ts: i64) -> (i32, Option<String>, String) {
    (
        0,
        None,
        json!({"cur": "EUR", "rate": rate, "ts": ts}).to_string(),
    )
}

/// Waits until `cond` holds (checked every 20 ms), at most 30 s.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_ahead_of_the_table_is_held_uncommitted_and_joined_after_a_restart() {
    let plan = plan(RATES);
    let b = cluster(&plan, 1);
    b.create_topic("rates", 1).expect("table topic");
    produce(&b, "rates", &[rate(1.1, 1_000), rate(1.15, 2_000)]);
    // The table's watermark is 2000: order 1 (at 1500) joins the version
    // of 1000; order 2 is ahead of the table, held until its watermark
    // reaches 5000.
    produce(&b, "orders", &[order(1, 1_500), order(2, 5_000)]);

    let run = |plan: Arc<Plan>, metrics: Metrics| {
        let (tx, rx) = shutdown_channel();
        let opts = options(&b, None);
        let task = tokio::spawn(run_pipeline(
            plan,
            opts,
            metrics,
            Arc::new(Health::default()),
            rx,
        ));
        (tx, task)
    };

    // First run: order 1 joined with the version of 1000; order 2 held,
    // so the group commits 1, not 2.
    let metrics = Metrics::new();
    let (tx, task) = run(Arc::clone(&plan), metrics.clone());
    let out = read(&b, "priced", 1, Duration::from_secs(30));
    assert_eq!(out[0].1, json!({"id": 1, "rate": {"rate": 1.1}}));
    wait_until("order 2 held", || held(&metrics, &plan) == 1).await;
    tx.send(true).expect("shutdown");
    let first = task.await.expect("task").expect("first run");
    assert_eq!((first.records_in, first.records_out), (1, 1));
    assert_eq!(
        committed(&b, &plan),
        1,
        "the held record is not committed past"
    );

    // Second run: the tables are read again, order 2 is read again and
    // held again; a version at 5000 arriving now releases it, joined with
    // that version (T4: not with 1.15, the newest when it was read).
    let metrics = Metrics::new();
    let (tx, task) = run(Arc::clone(&plan), metrics.clone());
    wait_until("order 2 held again", || held(&metrics, &plan) == 1).await;
    produce(&b, "rates", &[rate(1.2, 5_000)]);
    let out = read(&b, "priced", 2, Duration::from_secs(30));
    let values: Vec<&Value> = out.iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        [
            &json!({"id": 1, "rate": {"rate": 1.1}}),
            &json!({"id": 2, "rate": {"rate": 1.2}})
        ]
    );
    wait_until("offset 2 committed", || committed(&b, &plan) == 2).await;
    tx.send(true).expect("shutdown");
    let second = task.await.expect("task").expect("second run");
    assert_eq!((second.records_in, second.records_out), (1, 1));
    assert_eq!(
        metrics
            .table_entries
            .with_label_values(&[&plan.name, "rates"])
            .get(),
        1,
        "one key"
    );
    let joined = |result: &str| {
        metrics
            .join_records
            .with_label_values(&[&plan.name, "0:join", result])
            .get()
    };
    assert_eq!((joined("matched"), joined("unmatched")), (1, 0));
}
