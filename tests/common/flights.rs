//! The flights case of `pipelines/flight-delays.yaml` for tests that run
//! it on a broker: the input records (one partition per origin airport,
//! a sentinel per partition 48 h after its last flight so every window
//! closes) and every window result the two sinks must hold, computed in
//! plain Rust independently of weir; and the comparison of sink records
//! with that expectation. Used by `tests/e2e.rs` (the first 100,000
//! flights of 2013) and `tests/security.rs` (two days of flights).

// Each test crate uses a part of this module.
#![allow(dead_code)]

use crate::broker::SinkRecord;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// The pipeline's sink of every hourly window.
pub const HOURLY: &str = "departures-hourly";
/// The pipeline's sink of windows averaging over 30 min of delay.
pub const ALERTS: &str = "delay-alerts";
/// Each origin's partition of the input topic.
pub const ORIGINS: [(&str, i32); 3] = [("EWR", 0), ("JFK", 1), ("LGA", 2)];

/// (sink, origin, window start).
pub type WindowId = (String, String, i64);

/// The input records and the sink records they must produce.
pub struct FlightsCase {
    /// (partition, key, payload) in produce order, sentinels last.
    pub records: Vec<(i32, String, Vec<u8>)>,
    /// Every record both sinks must hold, by (sink, origin, window start).
    pub expected: BTreeMap<WindowId, Value>,
    /// Cancelled flights (filtered out by the pipeline).
    pub cancelled: usize,
    /// Records expected in [`HOURLY`].
    pub hourly_windows: usize,
    /// Records expected in [`ALERTS`].
    pub alert_windows: usize,
}

#[derive(Default)]
struct Acc {
    flights: i64,
    sum: f64,
    max: i64,
    delayed: i64,
}

/// Reads the flights file `path` (JSON lines, as
/// `scripts/flights_to_jsonl.py` writes): every line, or with `limit` the
/// first `limit` lines (the file must have that many); adds one sentinel
/// per partition and computes every expected window.
pub fn flights_case(path: &Path, limit: Option<usize>) -> FlightsCase {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines = BufReader::new(file)
        .lines()
        .map(|l| l.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .take(limit.unwrap_or(usize::MAX));
    let partition_of: HashMap<&str, i32> = ORIGINS.into_iter().collect();
    let mut records = Vec::new();
    let mut windows: BTreeMap<(String, i64), Acc> = BTreeMap::new();
    let mut max_ts: BTreeMap<String, i64> = BTreeMap::new();
    let mut last_flight: BTreeMap<String, Value> = BTreeMap::new();
    let mut cancelled = 0;
    for line in lines {
        let line = line.as_str();
        let v: Value = serde_json::from_str(line).expect("flight JSON");
        let origin = v["origin"].as_str().expect("origin").to_owned();
        let p = *partition_of
            .get(origin.as_str())
            .unwrap_or_else(|| panic!("unexpected origin {origin}"));
        records.push((p, origin.clone(), line.as_bytes().to_vec()));
        if v["dep_time"].is_null() {
            cancelled += 1;
            continue;
        }
        let ts = v["dep_ts"]
            .as_i64()
            .unwrap_or_else(|| panic!("dep_ts in {line}"));
        let delay = v["dep_delay"]
            .as_i64()
            .unwrap_or_else(|| panic!("dep_delay in {line}"));
        // The pipeline's 24 h bound must hold, or on-time records would be
        // late and this expectation wrong.
        let m = max_ts.entry(origin.clone()).or_insert(ts);
        assert!(
            *m - ts <= 24 * HOUR_MS,
            "input more than 24 h out of order: {line}"
        );
        *m = (*m).max(ts);
        let a = windows
            .entry((origin.clone(), ts.div_euclid(HOUR_MS) * HOUR_MS))
            .or_insert(Acc {
                max: i64::MIN,
                ..Acc::default()
            });
        a.flights += 1;
        a.sum += delay as f64;
        a.max = a.max.max(delay);
        a.delayed += i64::from(delay > 15);
        last_flight.insert(origin, v);
    }
    if let Some(n) = limit {
        assert_eq!(
            records.len(),
            n,
            "{} has fewer than {n} lines",
            path.display()
        );
    }
    for (origin, p) in ORIGINS {
        let mut s = last_flight[origin].clone();
        s["dep_ts"] = json!(max_ts[origin] + 48 * HOUR_MS);
        records.push((p, origin.to_owned(), serde_json::to_vec(&s).unwrap()));
    }
    let mut expected = BTreeMap::new();
    let mut alert_windows = 0;
    for ((origin, start), a) in &windows {
        let avg = a.sum / a.flights as f64;
        let v = json!({
            "key": origin,
            "window": {"start": start, "end": start + HOUR_MS},
            "flights": a.flights,
            "avg_dep_delay": avg,
            "max_dep_delay": a.max,
            "delayed": a.delayed,
        });
        if avg > 30.0 {
            alert_windows += 1;
            expected.insert((ALERTS.to_owned(), origin.clone(), *start), v.clone());
        }
        expected.insert((HOURLY.to_owned(), origin.clone(), *start), v);
    }
    FlightsCase {
        records,
        expected,
        cancelled,
        hourly_windows: windows.len(),
        alert_windows,
    }
}

/// How the records read from the sinks compare with the expectation.
#[derive(Default)]
pub struct Tally {
    /// Expected records seen at least once with the right value, per sink.
    pub present: BTreeMap<String, usize>,
    /// Identical repeats of expected records (at-least-once duplicates).
    pub repeats: usize,
    /// Records of an expected window with a different value: (id, got, want).
    pub wrong: Vec<(WindowId, String, Value)>,
    /// Records of no expected window, or not parseable as a window result.
    pub unexpected: Vec<String>,
    /// Records whose Kafka key is not the value's `key`, or whose Kafka
    /// timestamp is not the window end − 1 ms (DESIGN.md §2).
    pub bad_meta: Vec<String>,
    /// Expected records never seen.
    pub missing: Vec<WindowId>,
}

/// One sink record on one line, for messages.
pub fn describe(r: &SinkRecord) -> String {
    format!(
        "{}[{}]@{} key={:?} ts={:?} value={}",
        r.topic,
        r.partition,
        r.offset,
        r.key,
        r.timestamp,
        r.payload.as_deref().unwrap_or("<null>")
    )
}

/// Compares `records` with `expected`; `sink_of` maps a record's topic to
/// the sink name of the expectation ([`HOURLY`], [`ALERTS`]), `None` for a
/// topic of neither.
pub fn tally(
    expected: &BTreeMap<WindowId, Value>,
    records: &[SinkRecord],
    sink_of: impl Fn(&str) -> Option<String>,
) -> Tally {
    let mut t = Tally::default();
    let mut seen: HashMap<&WindowId, usize> = HashMap::new();
    for r in records {
        let parsed: Option<(WindowId, Value)> = r
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|v| {
                let origin = v["key"].as_str()?.to_owned();
                let start = v["window"]["start"].as_i64()?;
                Some(((sink_of(&r.topic)?, origin, start), v))
            });
        let Some((id, v)) = parsed else {
            t.unexpected.push(describe(r));
            continue;
        };
        let end = v["window"]["end"].as_i64();
        if r.key.as_deref() != Some(id.1.as_str()) || r.timestamp != end.map(|e| e - 1) {
            t.bad_meta.push(describe(r));
        }
        match expected.get_key_value(&id) {
            None => t.unexpected.push(describe(r)),
            Some((k, want)) if *want == v => *seen.entry(k).or_default() += 1,
            Some((_, want)) => t.wrong.push((id, describe(r), want.clone())),
        }
    }
    for (id, n) in &seen {
        *t.present.entry(id.0.clone()).or_default() += 1;
        t.repeats += n - 1;
    }
    t.missing = expected
        .keys()
        .filter(|k| !seen.contains_key(k))
        .cloned()
        .collect();
    t
}

impl Tally {
    /// Expected records present, over both sinks.
    pub fn present_total(&self) -> usize {
        self.present.values().sum()
    }

    /// Every record as expected, none missing, repeated or extra.
    pub fn exact(&self) -> bool {
        self.missing.is_empty()
            && self.wrong.is_empty()
            && self.unexpected.is_empty()
            && self.bad_meta.is_empty()
            && self.repeats == 0
    }

    /// Counts, and the first few of each kind of difference.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "present {:?}, missing {}, wrong {}, unexpected {}, repeats {}, bad key/timestamp {}",
            self.present,
            self.missing.len(),
            self.wrong.len(),
            self.unexpected.len(),
            self.repeats,
            self.bad_meta.len()
        );
        for m in self.missing.iter().take(5) {
            s += &format!("\n  missing: {m:?}");
        }
        for (id, got, want) in self.wrong.iter().take(5) {
            s += &format!("\n  wrong: {id:?}\n    got  {got}\n    want {want}");
        }
        for u in self.unexpected.iter().take(5) {
            s += &format!("\n  unexpected: {u}");
        }
        for b in self.bad_meta.iter().take(5) {
            s += &format!("\n  bad key/timestamp: {b}");
        }
        s
    }
}
