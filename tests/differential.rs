//! Differential test of the window operators: seeded random event streams
//! (several keys, bounded disorder, late records, gaps that close windows
//! and bridges that merge sessions) through every window kind and emit mode,
//! compared record for record, per key, with a plain batch computation of
//! the same windows written independently here: every window keeps the list
//! of its records and its aggregates are computed from that list when it
//! emits. The seed is printed on failure; `WEIR_DIFF_SEED` sets the base
//! seed and `WEIR_DIFF_CASES` the number of cases.

mod seeded;
use seeded::Rng;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use weir::expr::CelEnv;
use weir::operator::chain::Outcome;
use weir::operator::Chain;
use weir::spec::{parse_text, PipelineSpec};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Aligned { size: i64, advance: i64 },
    Session { gap: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Emit {
    Final,
    Update,
    Every(i64),
}

#[derive(Debug, Clone, Copy)]
struct Case {
    kind: Kind,
    emit: Emit,
    lateness: i64,
    bound: i64,
}

#[derive(Debug, Clone)]
struct Rec {
    key: String,
    t: i64,
    arrival: usize,
    x: Option<i64>,
    tag: String,
}

fn gen_case(rng: &mut Rng) -> Case {
    let kind = match rng.below(3) {
        0 => {
            let size = rng.pick(&[10, 30, 100]);
            Kind::Aligned {
                size,
                advance: size,
            }
        }
        1 => {
            let advance = rng.pick(&[5, 10, 25]);
            Kind::Aligned {
                size: advance * rng.pick(&[2, 3, 4]),
                advance,
            }
        }
        _ => Kind::Session {
            gap: rng.pick(&[5, 15, 40]),
        },
    };
    let emit = match rng.below(3) {
        0 => Emit::Final,
        1 => Emit::Update,
        _ => Emit::Every(rng.pick(&[7, 25, 60])),
    };
    Case {
        kind,
        emit,
        lateness: rng.pick(&[0, 5, 20]),
        bound: rng.pick(&[0, 10, 40]),
    }
}

fn gen_records(rng: &mut Rng) -> Vec<Rec> {
    let n = 50 + rng.below(250) as usize;
    let keys = 1 + rng.below(5);
    let mut t = rng.below(1000) as i64 - 500;
    (0..n)
        .map(|arrival| {
            t += rng.below(12) as i64;
            if rng.below(30) == 0 {
                t += 50 + rng.below(150) as i64; // a gap
            }
            let at = match rng.below(20) {
                0 => t - 60 - rng.below(100) as i64, // very late
                1..=6 => t - rng.below(50) as i64,   // disorder
                _ => t,
            };
            Rec {
                key: format!("k{}", rng.below(keys)),
                t: at,
                arrival,
                x: (rng.below(15) != 0).then(|| rng.below(101) as i64 - 50),
                tag: format!("t{}", rng.below(6)),
            }
        })
        .collect()
}

fn yaml(c: &Case) -> String {
    let kind = match c.kind {
        Kind::Aligned { size, advance } if size == advance => format!("tumbling: {size}ms"),
        Kind::Aligned { size, advance } => {
            format!("hopping: {{size: {size}ms, advance: {advance}ms}}")
        }
        Kind::Session { gap } => format!("session: {{gap: {gap}ms}}"),
    };
    let emit = match c.emit {
        Emit::Final => "final".to_owned(),
        Emit::Update => "update".to_owned(),
        Emit::Every(d) => format!("{{every: {d}ms}}"),
    };
    format!(
        "name: diff
source:
  topics: [in]
  event_time: {{path: $.ts, unit: ms}}
  watermark: {{max_out_of_orderness: {bound}ms}}
stages:
  - key_by: value.k
  - window:
      {kind}
      allowed_lateness: {lateness}ms
      emit: {emit}
      aggregate:
        n: count()
        s: sum(value.x)
        lo: min(value.x)
        hi: max(value.x)
        mean: avg(value.x)
        d: count_distinct(value.tag)
        f: first(value.x)
        l: last(value.x)
        c: collect(value.x, 3)
        p: percentile(value.x, 0.5)
sinks: [{{topic: out}}]
",
        bound = c.bound,
        lateness = c.lateness,
    )
}

/// Runs the records through weir's chain; returns the results and the
/// number of late records.
fn run_weir(c: &Case, recs: &[Rec]) -> (Vec<Value>, usize) {
    let loaded = parse_text::<PipelineSpec>(Path::new("diff.yaml"), &yaml(c)).unwrap();
    let plan = weir::plan::compile(&loaded, &CelEnv::new()).unwrap();
    let mut chain = Chain::new(
        &plan.env,
        Arc::clone(&plan.stages),
        Arc::clone(&plan.sinks),
        plan.max_out_of_orderness,
    );
    let (mut out, mut late) = (Vec::new(), 0);
    for r in recs {
        let mut v = json!({"k": r.key, "ts": r.t, "tag": r.tag});
        if let Some(x) = r.x {
            v["x"] = json!(x);
        }
        let payload = v.to_string();
        let rec = seeded::decode(&plan, &payload, r.arrival as i64);
        let step = chain.process(rec);
        assert!(step.errors.is_empty(), "{:?}", step.errors);
        if step.outcome == Some(Outcome::Late) {
            late += 1;
        }
        out.extend(step.emits.into_iter().map(|(_, r)| r.value));
    }
    out.extend(chain.flush().emits.into_iter().map(|(_, r)| r.value));
    (out, late)
}

// ---- the reference: windows as lists of records ----

struct Win {
    key: String,
    start: i64,
    end: i64,
    recs: Vec<Rec>,
    changed: bool,
}

struct Reference {
    case: Case,
    open: Vec<Win>,
    max_t: Option<i64>,
    out: Vec<Value>,
    late: usize,
}

fn key_text(k: &str) -> String {
    Value::String(k.to_owned()).to_string()
}

impl Reference {
    fn wm(&self) -> i64 {
        self.max_t.map_or(i64::MIN, |m| m - self.case.bound)
    }

    fn closes(&self, w: &Win) -> i64 {
        w.end + self.case.lateness
    }

    fn push(&mut self, r: Rec) {
        let wm = self.wm();
        let l = self.case.lateness;
        match self.case.kind {
            Kind::Aligned { size, advance } => {
                let mut starts = Vec::new();
                let mut s = r.t.div_euclid(advance) * advance;
                while s > r.t - size {
                    starts.push(s);
                    s -= advance;
                }
                starts.reverse();
                let mut accepted = false;
                for s in starts {
                    if s + size + l <= wm {
                        continue;
                    }
                    accepted = true;
                    let i = match self
                        .open
                        .iter()
                        .position(|w| w.key == r.key && w.start == s)
                    {
                        Some(i) => i,
                        None => {
                            self.open.push(Win {
                                key: r.key.clone(),
                                start: s,
                                end: s + size,
                                recs: Vec::new(),
                                changed: false,
                            });
                            self.open.len() - 1
                        }
                    };
                    self.open[i].recs.push(r.clone());
                    self.open[i].changed = true;
                    if self.case.emit == Emit::Update {
                        let v = result(&self.open[i]);
                        self.out.push(v);
                    }
                }
                if !accepted {
                    self.late += 1;
                }
            }
            Kind::Session { gap } => {
                let (mine, rest): (Vec<Win>, Vec<Win>) = std::mem::take(&mut self.open)
                    .into_iter()
                    .partition(|w| w.key == r.key && w.start <= r.t + gap && r.t <= w.end);
                self.open = rest;
                if mine.is_empty() && r.t + gap + l <= wm {
                    self.late += 1;
                } else {
                    let mut mine = mine;
                    mine.sort_by_key(|w| w.start);
                    let mut merged = Win {
                        key: r.key.clone(),
                        start: r.t,
                        end: r.t + gap,
                        recs: Vec::new(),
                        changed: true,
                    };
                    for w in mine {
                        merged.start = merged.start.min(w.start);
                        merged.end = merged.end.max(w.end);
                        merged.recs.extend(w.recs);
                    }
                    merged.recs.push(r.clone());
                    if self.case.emit == Emit::Update {
                        self.out.push(result(&merged));
                    }
                    self.open.push(merged);
                }
            }
        }
        if self.max_t.is_none_or(|m| r.t > m) {
            self.max_t = Some(r.t);
            self.advance(wm, self.wm());
        }
    }

    fn close_through(&mut self, to: i64) {
        let mut closing: Vec<Win> = Vec::new();
        let mut keep = Vec::new();
        for w in std::mem::take(&mut self.open) {
            if self.closes(&w) <= to {
                closing.push(w);
            } else {
                keep.push(w);
            }
        }
        self.open = keep;
        closing.sort_by_key(|w| (self.closes(w), key_text(&w.key), w.start));
        if self.case.emit != Emit::Update {
            self.out.extend(closing.iter().map(result));
        }
    }

    fn advance(&mut self, from: i64, to: i64) {
        self.close_through(to);
        if let Emit::Every(d) = self.case.emit {
            if from < to && to.div_euclid(d) * d > from {
                self.open.sort_by_key(|w| (key_text(&w.key), w.start));
                for w in self.open.iter_mut().filter(|w| w.changed) {
                    w.changed = false;
                    self.out.push(result(w));
                }
            }
        }
    }
}

fn result(w: &Win) -> Value {
    let mut by_time: Vec<&Rec> = w.recs.iter().collect();
    by_time.sort_by_key(|r| (r.t, r.arrival));
    let xs: Vec<i64> = by_time.iter().filter_map(|r| r.x).collect();
    let sum: i64 = xs.iter().sum();
    let mut tags: Vec<&str> = w.recs.iter().map(|r| r.tag.as_str()).collect();
    tags.sort();
    tags.dedup();
    let mut m = Map::new();
    m.insert("key".into(), json!(w.key));
    m.insert("window".into(), json!({"start": w.start, "end": w.end}));
    m.insert("n".into(), json!(w.recs.len()));
    m.insert(
        "s".into(),
        if xs.is_empty() {
            Value::Null
        } else {
            json!(sum)
        },
    );
    m.insert("lo".into(), json!(xs.iter().min()));
    m.insert("hi".into(), json!(xs.iter().max()));
    m.insert(
        "mean".into(),
        if xs.is_empty() {
            Value::Null
        } else {
            json!(sum as f64 / xs.len() as f64)
        },
    );
    m.insert("d".into(), json!(tags.len()));
    m.insert("f".into(), json!(xs.first()));
    // last: the largest event time, the latest added among equals
    let last = w
        .recs
        .iter()
        .filter(|r| r.x.is_some())
        .max_by_key(|r| (r.t, r.arrival))
        .and_then(|r| r.x);
    m.insert("l".into(), json!(last));
    m.insert(
        "c".into(),
        if xs.is_empty() {
            Value::Null
        } else {
            json!(xs.iter().take(3).collect::<Vec<_>>())
        },
    );
    // percentile: the exact value of rank floor(q·(n−1)), checked within 1%
    let mut sorted = xs.clone();
    sorted.sort();
    m.insert(
        "p".into(),
        sorted
            .get(((sorted.len().max(1) - 1) as f64 * 0.5).floor() as usize)
            .map_or(Value::Null, |v| json!(*v)),
    );
    Value::Object(m)
}

fn same(got: &Value, want: &Value) -> bool {
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        return false;
    };
    g.len() == w.len()
        && w.iter().all(|(k, wv)| match (k.as_str(), g.get(k)) {
            ("p", Some(gv)) => match (gv.as_f64(), wv.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() <= 0.01 * b.abs() + 1e-9,
                _ => gv == wv,
            },
            (_, Some(gv)) => gv == wv,
            _ => false,
        })
}

fn per_key(v: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in v {
        m.entry(r["key"].to_string()).or_default().push(r.clone());
    }
    m
}

fn run_case(seed: u64) -> Result<(usize, usize), String> {
    let mut rng = Rng(seed);
    let case = gen_case(&mut rng);
    let recs = gen_records(&mut rng);
    let (got, got_late) = run_weir(&case, &recs);
    let mut reference = Reference {
        case,
        open: Vec::new(),
        max_t: None,
        out: Vec::new(),
        late: 0,
    };
    for r in &recs {
        reference.push(r.clone());
    }
    reference.close_through(i64::MAX);
    let want = reference.out;
    let fail = |m: String| {
        Err(format!(
            "seed {seed} ({case:?}, {} records): {m}",
            recs.len()
        ))
    };
    if got_late != reference.late {
        return fail(format!(
            "late records: weir {got_late}, reference {}",
            reference.late
        ));
    }
    let (g, w) = (per_key(&got), per_key(&want));
    if g.keys().ne(w.keys()) {
        return fail(format!(
            "keys differ: weir {:?}, reference {:?}",
            g.keys(),
            w.keys()
        ));
    }
    for (k, wv) in &w {
        let gv = &g[k];
        if gv.len() != wv.len() {
            return fail(format!(
                "key {k}: weir emitted {} results, the reference {}\nweir: {gv:?}\nreference: {wv:?}",
                gv.len(),
                wv.len()
            ));
        }
        for (i, (a, b)) in gv.iter().zip(wv).enumerate() {
            if !same(a, b) {
                return fail(format!(
                    "key {k}, result {i}:\nweir:      {a}\nreference: {b}"
                ));
            }
        }
    }
    Ok((want.len(), reference.late))
}

#[test]
fn every_window_kind_and_emit_mode_matches_a_batch_reference() {
    let base = seeded::base_seed("WEIR_DIFF_SEED", 0x5eed_0004);
    let cases: u64 = std::env::var("WEIR_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let (mut results, mut late) = (0, 0);
    let mut failures = Vec::new();
    for i in 0..cases {
        match run_case(base.wrapping_add(i)) {
            Ok((r, l)) => {
                results += r;
                late += l;
            }
            Err(e) => failures.push(e),
        }
    }
    println!(
        "differential: {cases} cases (base seed {base:#x}), {results} window results, {late} late records compared"
    );
    assert!(
        late > 0 && results > 1000,
        "the generator must exercise lateness"
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ; first: {}",
        failures.len(),
        failures[0]
    );
}
