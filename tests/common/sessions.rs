//! The sessions case shared by the crash and reset tests on Tansu: a
//! `key_by` + session window pipeline (records cross the repartition
//! topic), its input of visits, the batch reference, and the daemon
//! config of a replica.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use crate::broker::{wait_for_port, SinkRecord, Weir};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Users in the visits.
pub const USERS: i64 = 40;
/// The session gap, ms.
pub const GAP_MS: i64 = 60_000;

/// The pipeline, with `DELIVERY` to replace.
pub const PIPELINE: &str = "name: sessions
source:
  topics: [visits]
  format: json
  event_time: {path: $.ts, unit: ms}
  watermark: {max_out_of_orderness: 10s}
stages:
  - key_by: value.user
  - window:
      session: {gap: 1m}
      aggregate:
        n: count()
        total: sum(value.amount)
        first_page: first(value.page)
        last_page: last(value.page)
sinks:
  - topic: sessions
delivery: DELIVERY
";

/// The tumbling-window pipeline over the same visits (1 minute windows per
/// user, through the repartition topic), with `DELIVERY` to replace.
pub const TUMBLING_PIPELINE: &str = "name: visits-per-minute
source:
  topics: [visits]
  format: json
  event_time: {path: $.ts, unit: ms}
  watermark: {max_out_of_orderness: 10s}
stages:
  - key_by: value.user
  - window:
      tumbling: 1m
      aggregate:
        n: count()
        total: sum(value.amount)
sinks:
  - topic: visits-per-minute
delivery: DELIVERY
";

/// The tumbling window size of [`TUMBLING_PIPELINE`], ms.
pub const TUMBLE_MS: i64 = 60_000;

/// [`TUMBLING_PIPELINE`]'s results computed in one batch: per user and
/// epoch-aligned minute, the count and the sum of amounts. The
/// sentinel user's window never closes and is left out.
pub fn batch_tumbling(input: &[(i32, String, Vec<u8>)]) -> BTreeMap<(String, i64), Value> {
    let mut acc: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    for (_, user, e) in input.iter().filter(|(_, u, _)| u != "zz") {
        let v: Value = serde_json::from_slice(e).unwrap();
        let ts = v["ts"].as_i64().unwrap();
        let start = ts - ts.rem_euclid(TUMBLE_MS);
        let a = acc.entry((user.clone(), start)).or_default();
        a.0 += 1;
        a.1 += v["amount"].as_i64().unwrap();
    }
    acc.into_iter()
        .map(|((user, start), (n, total))| {
            let v = json!({"key": user, "window": {"start": start, "end": start + TUMBLE_MS},
                           "n": n, "total": total});
            ((user, start), v)
        })
        .collect()
}

/// Visits of 40 users, spread round-robin over the partitions (not by
/// user), in time order; every 2,000 events a pause of 2 minutes ends
/// every session. One sentinel per partition 2 hours after the last visit
/// closes the rest.
pub fn visits(events: i64, partitions: i32) -> Vec<(i32, String, Vec<u8>)> {
    let mut t = 1_700_000_000_000i64;
    let mut v: Vec<(i32, String, Vec<u8>)> = (0..events)
        .map(|n| {
            t += (n * 7919) % 1_000;
            if n % 2_000 == 1_999 {
                t += 2 * GAP_MS;
            }
            let user = format!("u{}", (n * 7) % USERS);
            let e = json!({"user": user, "ts": t, "amount": n % 10, "page": format!("p{n}")});
            (
                (n % partitions as i64) as i32,
                user,
                e.to_string().into_bytes(),
            )
        })
        .collect();
    for p in 0..partitions {
        let e = json!({"user": "zz", "ts": t + 7_200_000, "amount": 0, "page": "end"});
        v.push((p, "zz".into(), e.to_string().into_bytes()));
    }
    v
}

/// Sessions computed in one batch: per user, visits sorted by time, split
/// where two consecutive visits are more than the gap apart.
pub fn batch_sessions(input: &[(i32, String, Vec<u8>)]) -> BTreeMap<(String, i64), Value> {
    let mut by_user: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (_, user, e) in input.iter().filter(|(_, u, _)| u != "zz") {
        by_user
            .entry(user.clone())
            .or_default()
            .push(serde_json::from_slice(e).unwrap());
    }
    let mut out = BTreeMap::new();
    for (user, mut evs) in by_user {
        evs.sort_by_key(|e| e["ts"].as_i64());
        let mut groups: Vec<Vec<Value>> = Vec::new();
        for e in evs {
            match groups.last_mut() {
                Some(g)
                    if e["ts"].as_i64().unwrap() - g.last().unwrap()["ts"].as_i64().unwrap()
                        <= GAP_MS =>
                {
                    g.push(e)
                }
                _ => groups.push(vec![e]),
            }
        }
        for g in groups {
            let (f, l) = (&g[0], &g[g.len() - 1]);
            let start = f["ts"].as_i64().unwrap();
            let total: i64 = g.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
            out.insert(
                (user.clone(), start),
                json!({"key": user, "window": {"start": start, "end": l["ts"].as_i64().unwrap() + GAP_MS},
                       "n": g.len(), "total": total, "first_page": f["page"], "last_page": l["page"]}),
            );
        }
    }
    out
}

/// How the sink compares with the expectation.
#[derive(Debug, Default)]
pub struct Tally {
    /// Expected results seen at least once.
    pub present: usize,
    /// Expected results never seen.
    pub missing: usize,
    /// Results that differ from every expected one.
    pub wrong: Vec<String>,
    /// Extra identical copies of expected results.
    pub repeats: usize,
}

pub fn tally(expected: &BTreeMap<(String, i64), Value>, records: &[SinkRecord]) -> Tally {
    let mut seen: BTreeMap<(String, i64), usize> = BTreeMap::new();
    let mut t = Tally::default();
    for r in records {
        let v: Value =
            serde_json::from_str(r.payload.as_deref().unwrap_or("null")).unwrap_or(Value::Null);
        let k = (
            v["key"].as_str().unwrap_or("?").to_owned(),
            v["window"]["start"].as_i64().unwrap_or(i64::MIN),
        );
        if expected.get(&k) != Some(&v) {
            t.wrong.push(v.to_string());
            continue;
        }
        *seen.entry(k).or_default() += 1;
    }
    t.present = seen.len();
    t.missing = expected.len() - seen.len();
    t.repeats = seen.values().map(|n| n - 1).sum();
    t
}

impl Tally {
    /// One line for messages.
    pub fn summary(&self) -> String {
        format!(
            "present {}, missing {}, wrong {}, identical repeats {}{}",
            self.present,
            self.missing,
            self.wrong.len(),
            self.repeats,
            self.wrong
                .first()
                .map(|w| format!("; first wrong: {w}"))
                .unwrap_or_default()
        )
    }
}

/// A replica's daemon config in `dir/INSTANCE.yaml`.
pub fn write_config(
    dir: &Path,
    bootstrap: &str,
    port: u16,
    instance: &str,
    pipeline: &Path,
) -> PathBuf {
    let cfg = format!(
        "kafka:\n  bootstrap_servers: \"{bootstrap}\"\n  client:\n    session.timeout.ms: \"{}\"\n    transaction.timeout.ms: \"900000\"\n\
         metrics:\n  listen: \"127.0.0.1:{port}\"\n\
         log:\n  format: json\n  level: info\n\
         commit_interval: 1s\n\
         shutdown_timeout: 10s\n\
         instance_id: {instance}\n\
         pipelines: [{:?}]\n",
        crate::broker::SESSION_TIMEOUT_MS,
        pipeline.display().to_string()
    );
    let path = dir.join(format!("{instance}.yaml"));
    std::fs::write(&path, cfg).expect("write config");
    path
}

/// `weir run` with `config`, once its metrics port listens.
pub fn start(dir: &Path, name: &str, config: &Path, port: u16) -> Weir {
    let mut w = Weir::start(dir, name, config, &[], port);
    wait_for_port(port, Duration::from_secs(30), || w.assert_alive());
    w
}
