//! The batch reference of `pipelines/flight-weather.yaml`, computed in
//! plain Rust independently of weir from the same JSON lines: each flight
//! with a departure delay joined with the weather at its origin valid at
//! its scheduled departure (an as-of lookup over every observation: the
//! greatest `obs_ts` ≤ `sched_dep_ts`, the later line winning at equal
//! times) and with its plane (by `tailnum`; null when unknown), then the
//! hourly windows per `origin + rain|dry`. Used by `tests/dev_cmd.rs` (two
//! days on the embedded broker) and `tests/join_kafka.rs` (the whole year
//! on Apache Kafka).

// Each test crate uses a part of this module.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// One hour, ms.
const HOUR_MS: i64 = 3_600_000;
/// The pipeline's sink.
pub const SINK: &str = "delays-by-weather";

/// What the pipeline must produce from a set of flights, weather and planes.
#[derive(Debug, Default)]
pub struct Reference {
    /// Flights read.
    pub flights: usize,
    /// Flights without a departure delay (filtered by the first stage).
    pub filtered: usize,
    /// Flights with a weather observation at or before their departure.
    pub weather_matched: usize,
    /// Flights without one (`null` weather: counted as dry).
    pub weather_unmatched: usize,
    /// Flights whose plane is in `planes`.
    pub planes_matched: usize,
    /// Flights whose tail number is null or not in `planes`.
    pub planes_unmatched: usize,
    /// Every window result, by (key, window start ms).
    pub windows: BTreeMap<(String, i64), Value>,
}

/// Reads a JSON lines file.
pub fn read_lines(path: &Path) -> Vec<Value> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(f)
        .lines()
        .map(|l| l.expect("readable line"))
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(&l).expect("a JSON line"))
        .collect()
}

/// The reference of `flights` ⋈ `weather` ⋈ `planes` (JSON lines files).
pub fn reference(flights: &Path, weather: &Path, planes: &Path) -> Reference {
    reference_of(
        &read_lines(flights),
        &read_lines(weather),
        &read_lines(planes),
    )
}

/// The reference of the rows `flights` ⋈ `weather` ⋈ `planes`.
pub fn reference_of(flights: &[Value], weather: &[Value], planes: &[Value]) -> Reference {
    // Weather by origin: observation time → row, the later line winning.
    let mut by_origin: HashMap<String, BTreeMap<i64, &Value>> = HashMap::new();
    for w in weather {
        let origin = w["origin"].as_str().expect("origin").to_owned();
        let t = w["obs_ts"].as_i64().expect("obs_ts");
        by_origin.entry(origin).or_default().insert(t, w);
    }
    let known: HashSet<&str> = planes
        .iter()
        .filter_map(|p| p["tailnum"].as_str())
        .collect();
    let mut r = Reference::default();
    // (key, start) → (flights, sum of delays, known planes).
    let mut acc: BTreeMap<(String, i64), (u64, f64, u64)> = BTreeMap::new();
    for f in flights {
        r.flights += 1;
        let Some(delay) = f["dep_delay"].as_f64() else {
            r.filtered += 1;
            continue;
        };
        let origin = f["origin"].as_str().expect("origin");
        let t = f["sched_dep_ts"].as_i64().expect("sched_dep_ts");
        let obs = by_origin
            .get(origin)
            .and_then(|m| m.range(..=t).next_back().map(|(_, w)| *w));
        match obs {
            Some(_) => r.weather_matched += 1,
            None => r.weather_unmatched += 1,
        }
        let rain = obs.is_some_and(|w| w["rain"] == Value::Bool(true));
        let plane = f["tailnum"].as_str().is_some_and(|n| known.contains(n));
        if plane {
            r.planes_matched += 1;
        } else {
            r.planes_unmatched += 1;
        }
        let key = format!("{origin} {}", if rain { "rain" } else { "dry" });
        let start = t.div_euclid(HOUR_MS) * HOUR_MS;
        let a = acc.entry((key, start)).or_default();
        a.0 += 1;
        a.1 += delay;
        a.2 += u64::from(plane);
    }
    for ((key, start), (n, sum, planes)) in acc {
        let v = json!({
            "key": key,
            "window": {"start": start, "end": start + HOUR_MS},
            "flights": n,
            "avg_dep_delay": sum / n as f64,
            "known_planes": planes,
        });
        r.windows.insert((key, start), v);
    }
    r
}

/// Compares sink records `(key, value)` with `expected`: every window once,
/// or with `repeats_allowed` (at-least-once after a crash) repeats equal to
/// the first. Returns (records, repeats) or what differs.
pub fn compare(
    records: &[(String, Value)],
    expected: &BTreeMap<(String, i64), Value>,
    repeats_allowed: bool,
) -> Result<(usize, usize), String> {
    let mut seen: BTreeMap<(String, i64), &Value> = BTreeMap::new();
    let mut repeats = 0;
    for (key, v) in records {
        let start = v["window"]["start"]
            .as_i64()
            .ok_or_else(|| format!("a record without a window start: {v}"))?;
        let id = (key.clone(), start);
        let Some(want) = expected.get(&id) else {
            return Err(format!("an unexpected window {id:?}: {v}"));
        };
        if v != want {
            return Err(format!("window {id:?}: got {v}, expected {want}"));
        }
        if seen.insert(id.clone(), v).is_some() {
            if !repeats_allowed {
                return Err(format!("window {id:?} written twice"));
            }
            repeats += 1;
        }
    }
    if seen.len() != expected.len() {
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !seen.contains_key(*k))
            .take(5)
            .collect();
        return Err(format!(
            "{} of {} windows missing, e.g. {missing:?}",
            expected.len() - seen.len(),
            expected.len()
        ));
    }
    Ok((records.len(), repeats))
}
