//! Checking window results against a batch reference: the per-page
//! one-minute tumbling count and revenue of `tumbling-count.yaml`, computed
//! from the generated input itself (every record regenerated from its id),
//! against what a contender wrote to its output topic (weir's (5) and (6),
//! the peers' (10)–(13)).
//!
//! A window is *closed* at the end of the run when its end is at or below the
//! final watermark, `min over input partitions (max ts) − 2 s` (weir's and
//! Flink's rule). Every window whose end is at least another 2 s below that
//! must be in the output (slack for Kafka Streams, whose stream time is the
//! highest timestamp its task saw); windows closer to the end may still be
//! open, and if present must be right too. Each result must name a window of
//! the reference, with the page as Kafka key, `window.end = start + 60 s`,
//! `views` equal to the count and `revenue` to the sum (within 1e-9
//! relative: the summation order differs). A second result for the same
//! window is a duplicate: allowed at-least-once (reported), wrong
//! exactly-once.

use crate::broker::Broker;
use crate::data;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

/// Window size of the tumbling jobs, ms.
const SIZE_MS: i64 = 60_000;
/// `watermark.max_out_of_orderness` of the tumbling jobs (and the peers'
/// bound / grace), ms.
const OUT_OF_ORDER_MS: i64 = 2_000;

/// The batch reference: count and revenue of every (page, window start).
pub struct Reference {
    windows: HashMap<(String, i64), (u64, f64)>,
    /// Windows ending at or below this must be in every output.
    required_end: i64,
}

#[derive(Deserialize)]
struct InputFields {
    page: String,
    ts: i64,
    price: f64,
}

impl Reference {
    /// From records `0..n` of the input.
    pub fn new(n: u64) -> Reference {
        let mut windows: HashMap<(String, i64), (u64, f64)> = HashMap::new();
        let mut max_ts = vec![i64::MIN; data::PARTITIONS as usize];
        for id in 0..n {
            let r = data::record(id);
            let f: InputFields = serde_json::from_slice(&r.payload).expect("generated record");
            let start = f.ts - f.ts.rem_euclid(SIZE_MS);
            let w = windows.entry((f.page, start)).or_default();
            w.0 += 1;
            w.1 += f.price;
            let m = &mut max_ts[r.partition as usize];
            *m = (*m).max(f.ts);
        }
        let watermark = max_ts.iter().min().copied().unwrap_or(i64::MIN) - OUT_OF_ORDER_MS;
        Reference {
            windows,
            required_end: watermark - OUT_OF_ORDER_MS,
        }
    }

    /// Windows every output must hold.
    pub fn required(&self) -> usize {
        self.windows
            .keys()
            .filter(|(_, s)| s + SIZE_MS <= self.required_end)
            .count()
    }
}

/// What an output topic of window results holds, against the reference.
#[derive(Debug, Default)]
pub struct WindowCheck {
    /// Results read.
    pub records: u64,
    /// Distinct windows among them.
    pub distinct: u64,
    /// Results for a window already seen.
    pub duplicates: u64,
    /// Results whose key, end, count or revenue differ from the reference.
    pub wrong: u64,
    /// Results for a window the reference does not have.
    pub unexpected: u64,
    /// Results that are not window JSON.
    pub unreadable: u64,
    /// Required windows never seen.
    pub missing: u64,
    /// Windows of the reference that must be there.
    pub required: u64,
    /// Windows near the end not emitted (still open: fine).
    pub open: u64,
    /// Exactly-once output: duplicates are wrong.
    pub exactly_once: bool,
    /// The first problems, described.
    pub diffs: Vec<String>,
}

impl WindowCheck {
    /// Every required window, each result right, no duplicate where that matters.
    pub fn ok(&self) -> bool {
        (self.records > 0 || self.required == 0)
            && self.wrong == 0
            && self.unexpected == 0
            && self.unreadable == 0
            && self.missing == 0
            && !(self.exactly_once && self.duplicates > 0)
    }

    /// One line for the report (and the first differences).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} window results against the batch reference ({} windows required): {} distinct, {} duplicates{}, {} wrong, {} missing, {} unexpected, {} unreadable, {} at the end still open",
            self.records,
            self.required,
            self.distinct,
            self.duplicates,
            if self.exactly_once { " (exactly_once: must be 0)" } else { "" },
            self.wrong,
            self.missing,
            self.unexpected,
            self.unreadable,
            self.open
        );
        for d in &self.diffs {
            s += &format!("; {d}");
        }
        s
    }

    fn diff(&mut self, d: impl FnOnce() -> String) {
        if self.diffs.len() < 3 {
            self.diffs.push(d());
        }
    }
}

#[derive(Deserialize)]
struct Span {
    start: i64,
    end: i64,
}

#[derive(Deserialize)]
struct WindowResult {
    key: String,
    window: Span,
    views: u64,
    revenue: f64,
}

/// Reads `topic` (read_committed when `exactly_once`) and checks it against
/// `reference`.
pub fn check(
    broker: &Broker,
    topic: &str,
    exactly_once: bool,
    reference: &Reference,
    timeout: Duration,
) -> Result<WindowCheck, String> {
    let mut c = WindowCheck {
        exactly_once,
        ..WindowCheck::default()
    };
    let mut seen: HashMap<(String, i64), u32> = HashMap::new();
    let records = crate::verify::for_each_record(
        broker,
        topic,
        exactly_once,
        timeout,
        |key, payload| {
            let Ok(r) = serde_json::from_slice::<WindowResult>(payload) else {
                c.unreadable += 1;
                let p = String::from_utf8_lossy(payload).into_owned();
                c.diff(|| format!("unreadable: {p}"));
                return;
            };
            let id = (r.key, r.window.start);
            let Some(&(views, revenue)) = reference.windows.get(&id) else {
                c.unexpected += 1;
                c.diff(|| format!("no such window: {id:?}"));
                return;
            };
            let key_ok = key == Some(id.0.as_bytes());
            let rev_ok = (r.revenue - revenue).abs() <= 1e-9 * revenue.abs().max(1.0);
            if !key_ok || r.window.end != id.1 + SIZE_MS || r.views != views || !rev_ok {
                c.wrong += 1;
                let k = key.map(|k| String::from_utf8_lossy(k).into_owned());
                c.diff(|| {
                format!(
                    "{id:?}: key {k:?}, end {}, views {}, revenue {} (want end {}, views {views}, revenue {revenue})",
                    r.window.end,
                    r.views,
                    r.revenue,
                    id.1 + SIZE_MS
                )
            });
            }
            let n = seen.entry(id).or_default();
            if *n > 0 {
                c.duplicates += 1;
            } else {
                c.distinct += 1;
            }
            *n += 1;
        },
    )?;
    c.records = records;
    for id in reference.windows.keys() {
        if seen.contains_key(id) {
            continue;
        }
        if id.1 + SIZE_MS <= reference.required_end {
            c.missing += 1;
            if c.diffs.len() < 3 {
                c.diffs.push(format!("missing: {id:?}"));
            }
        } else {
            c.open += 1;
        }
    }
    c.required = reference.required() as u64;
    Ok(c)
}
