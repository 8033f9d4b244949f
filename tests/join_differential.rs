//! Differential test of the stream–table join core (DESIGN.md §7 T2–T4,
//! null keys): random table and stream topics, consumed interleaved as two
//! topics are, go through `VersionedTable`, `TableWatermark`, `Hold` and
//! `TableJoin::apply` (inner and left, `time: event` and `latest`, with
//! `expire` as the stream's watermark moves), and through an independent
//! reference written here: every table version that arrived kept in a list,
//! the hold as a queue in arrival order (records leave from its front), the join an as-of scan over the
//! versions that had arrived when the record was released. The two must
//! release the same records in the same order with the same joined values,
//! and expire the same lookups (`table history expired`), which the
//! reference predicts from the retention rule (Flink's event-time temporal
//! join) without dropping anything. Seeded; the seed is printed on failure
//! and `WEIR_JOIN_SEED` overrides the base seed.

mod seeded;
use seeded::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use weir::expr::CelEnv;
use weir::operator::join::{
    table_key, table_value, Hold, JoinOutcome, JoinTime, JoinType, TableJoin, TableWatermark,
    VersionedTable,
};
use weir::record::{Origin, Record};

const CASES: u64 = 300;
const CONFIGS: [(JoinType, JoinTime); 4] = [
    (JoinType::Inner, JoinTime::Event),
    (JoinType::Left, JoinTime::Event),
    (JoinType::Inner, JoinTime::Latest),
    (JoinType::Left, JoinTime::Latest),
];

/// One record consumed, table or stream.
#[derive(Debug, Clone)]
enum Ev {
    /// A table record of `partition`: `key` (null: a table record error),
    /// version time, value (`None`: a tombstone).
    Table {
        partition: i32,
        key: Value,
        time: i64,
        value: Option<Value>,
    },
    /// A table partition at its end: idle.
    Idle(i32),
    /// A stream record; `key: None` lacks the `k` field.
    Stream {
        id: u64,
        partition: i32,
        offset: i64,
        key: Option<Value>,
        time: i64,
    },
}

/// A join's result for one record, per config.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Joined(Value),
    Unmatched,
    Filtered,
    Expired,
}

struct Case {
    events: Vec<Ev>,
    partitions: i32,
    table_ooo: i64,
    stream_ooo: i64,
    history: i64,
}

/// Times of one topic partition: a base moving forward (with gaps), each
/// record up to `ooo` behind it, some late ones further behind.
fn times(rng: &mut Rng, n: u64, start: i64, ooo: i64) -> Vec<i64> {
    let mut base = start;
    (0..n)
        .map(|_| {
            base += rng.below(8) as i64;
            if rng.below(20) == 0 {
                base += 100 + rng.below(200) as i64;
            }
            if rng.below(10) == 0 {
                base - ooo - 1 - rng.below(60) as i64
            } else {
                base - rng.below(ooo as u64 + 1) as i64
            }
        })
        .collect()
}

fn generate(rng: &mut Rng) -> Case {
    let nkeys = 1 + rng.below(4);
    let partitions = 1 + rng.below(3) as i32;
    let table_ooo = rng.pick(&[0, 3, 10]);
    let stream_ooo = rng.pick(&[0, 3, 10]);
    let history = rng.pick(&[0, 0, 5, 20, 100]);
    let mut queues: Vec<Vec<Ev>> = Vec::new();
    let mut seq = 0;
    for p in 0..partitions {
        let n = rng.below(16);
        let mut q: Vec<Ev> = times(rng, n, 0, table_ooo)
            .into_iter()
            .map(|time| {
                seq += 1;
                let key = match rng.below(20) {
                    0 => Value::Null,
                    _ => json!(format!("k{}", rng.below(nkeys))),
                };
                let value = (rng.below(5) != 0).then(|| json!({"v": seq}));
                Ev::Table {
                    partition: p,
                    key,
                    time,
                    value,
                }
            })
            .collect();
        if rng.below(2) == 0 {
            q.push(Ev::Idle(p));
        }
        queues.push(q);
    }
    let n = rng.below(40);
    let start = rng.below(300) as i64 - 100;
    let mut offsets = [0i64; 2];
    let stream: Vec<Ev> = times(rng, n, start, stream_ooo)
        .into_iter()
        .enumerate()
        .map(|(i, time)| {
            let partition = rng.below(2) as i32;
            offsets[partition as usize] += 1;
            let key = match rng.below(10) {
                0 => None,
                1 => Some(Value::Null),
                _ => Some(json!(format!("k{}", rng.below(nkeys)))),
            };
            Ev::Stream {
                id: i as u64,
                partition,
                offset: offsets[partition as usize],
                key,
                time,
            }
        })
        .collect();
    queues.push(stream);
    for q in &mut queues {
        q.reverse();
    }
    let mut events = Vec::new();
    loop {
        let open: Vec<usize> = (0..queues.len())
            .filter(|i| !queues[*i].is_empty())
            .collect();
        if open.is_empty() {
            break;
        }
        let i = open[rng.below(open.len() as u64) as usize];
        events.extend(queues[i].pop());
    }
    events.extend((0..partitions).map(Ev::Idle));
    Case {
        events,
        partitions,
        table_ooo,
        stream_ooo,
        history,
    }
}

/// The system under test: weir's join core, driven as the runtime would.
struct Sut<'a> {
    root: &'a cel::Context<'static, 'static>,
    joins: Vec<TableJoin>,
    table: VersionedTable,
    watermark: TableWatermark,
    hold: Hold,
    stream_max: Option<i64>,
    out: Vec<(u64, Vec<Out>)>,
}

impl Sut<'_> {
    fn event(&mut self, ev: &Ev, case: &Case) {
        match ev {
            Ev::Table {
                partition,
                key,
                time,
                value,
            } => {
                let mut rec = Record::new(key.clone(), value.clone().unwrap_or(Value::Null));
                rec.event_time = *time;
                if let Some(k) = table_key(None, self.root, &rec).expect("a record key") {
                    self.table.insert(&k, *time, table_value(&rec));
                }
                self.watermark.observe(*partition, *time);
            }
            Ev::Idle(p) => self.watermark.set_idle(*p, true),
            Ev::Stream {
                id,
                partition,
                offset,
                key,
                time,
            } => {
                let mut v = json!({"id": id});
                if let Some(k) = key {
                    v["k"] = k.clone();
                }
                let mut rec = Record::new(Value::Null, v);
                rec.event_time = *time;
                rec.origin = Origin {
                    topic: Arc::from("s"),
                    partition: *partition,
                    offset: *offset,
                };
                self.stream_max = Some(self.stream_max.map_or(*time, |m| m.max(*time)));
                if let Some(r) = self.hold.offer(rec) {
                    self.join(r);
                }
            }
        }
        let released = match self.watermark.watermark() {
            None => self.hold.set_idle(true),
            Some(w) => self.hold.advance(w),
        };
        for r in released {
            self.join(r);
        }
        if let Some(m) = self.stream_max {
            let w = m.saturating_sub(case.stream_ooo);
            let low = self.hold.oldest_event_time().map_or(w, |o| o.min(w));
            self.table.expire(low.saturating_sub(case.history));
        }
    }

    fn join(&mut self, rec: Record) {
        let id = rec.value["id"].as_u64().expect("an id");
        let outs = self
            .joins
            .iter()
            .map(|j| match j.apply(self.root, rec.clone(), &self.table) {
                JoinOutcome::Joined(r) => {
                    assert_eq!(r.value["id"], json!(id), "the record's own fields stay");
                    Out::Joined(r.value["t"].clone())
                }
                JoinOutcome::Unmatched(r) => {
                    assert_eq!(r.value.get("t"), Some(&Value::Null), "left: into = null");
                    Out::Unmatched
                }
                JoinOutcome::Filtered => Out::Filtered,
                JoinOutcome::Error(_, e) => {
                    assert_eq!(e.to_string(), "table history expired");
                    Out::Expired
                }
            })
            .collect();
        self.out.push((id, outs));
    }
}

/// A table version as the reference keeps it: time, arrival number, value.
type Version = (i64, u64, Option<Value>);

/// A held stream record in the reference: id, key (`None`: missing),
/// event time, (partition, offset).
type Pending = (u64, Option<Value>, i64, (i32, i64));

/// The reference's view of one key.
#[derive(Default)]
struct RefKey {
    /// Every version that arrived, in arrival order.
    all: Vec<Version>,
    /// Whether the table holds the key (not removed by retention).
    present: bool,
    /// First arrival number since the key was last (re)created.
    created: u64,
    /// Lookups answered by a version older than this expire.
    floor: i64,
}

/// The version that answers at `t` among `vs`: greatest time ≤ t, the
/// last to arrive among equal times.
fn as_of<'a>(vs: impl Iterator<Item = &'a Version>, t: i64) -> Option<&'a Version> {
    vs.filter(|v| v.0 <= t).max_by_key(|v| (v.0, v.1))
}

/// The reference: keeps everything, decides by scanning.
#[derive(Default)]
struct Reference {
    keys: HashMap<String, RefKey>,
    seq: u64,
    cutoff: Option<i64>,
    part_max: HashMap<i32, i64>,
    idle: HashMap<i32, bool>,
    all_idle: bool,
    released_to: Option<i64>,
    pending: Vec<Pending>,
    stream_max: Option<i64>,
    out: Vec<(u64, Vec<Out>)>,
}

impl Reference {
    fn event(&mut self, ev: &Ev, case: &Case) {
        match ev {
            Ev::Table {
                partition,
                key,
                time,
                value,
            } => {
                self.seq += 1;
                if !key.is_null() {
                    let k = self.keys.entry(key.to_string()).or_default();
                    if !k.present {
                        k.present = true;
                        k.created = self.seq;
                        k.floor = self.cutoff.unwrap_or(i64::MIN);
                    }
                    k.all.push((*time, self.seq, value.clone()));
                }
                let m = self.part_max.entry(*partition).or_insert(i64::MIN);
                *m = (*m).max(*time);
            }
            Ev::Idle(p) => {
                self.idle.insert(*p, true);
            }
            Ev::Stream {
                id,
                partition,
                offset,
                key,
                time,
            } => {
                self.stream_max = Some(self.stream_max.map_or(*time, |m| m.max(*time)));
                let entry = (*id, key.clone(), *time, (*partition, *offset));
                if self.pending.is_empty()
                    && (self.all_idle || self.released_to.is_some_and(|w| *time <= w))
                {
                    self.join(&entry);
                } else {
                    self.pending.push(entry);
                }
            }
        }
        let active: Vec<i32> = (0..case.partitions)
            .filter(|p| !self.idle.get(p).copied().unwrap_or(false))
            .collect();
        self.all_idle = active.is_empty();
        if let Some(w) = active
            .iter()
            .map(|p| {
                let m = self.part_max.get(p).copied().unwrap_or(i64::MIN);
                m.saturating_sub(case.table_ooo)
            })
            .min()
        {
            self.released_to = Some(self.released_to.map_or(w, |r| r.max(w)));
        }
        // Records leave in arrival order: from the oldest up to the first
        // whose time the table has not reached.
        let ready = self
            .pending
            .iter()
            .take_while(|e| self.all_idle || self.released_to.is_some_and(|w| e.2 <= w))
            .count();
        let released: Vec<Pending> = self.pending.drain(..ready).collect();
        for e in released {
            self.join(&e);
        }
        if let Some(m) = self.stream_max {
            let mut low = m.saturating_sub(case.stream_ooo);
            for e in &self.pending {
                low = low.min(e.2);
            }
            self.expire(low.saturating_sub(case.history));
        }
    }

    /// The retention rule, without dropping: per present key, a floor at
    /// the newest version ≤ cutoff once an older one exists; a key whose
    /// newest version is a tombstone ≤ cutoff is removed.
    fn expire(&mut self, cutoff: i64) {
        if self.cutoff.is_some_and(|c| cutoff <= c) {
            return;
        }
        self.cutoff = Some(cutoff);
        for k in self.keys.values_mut().filter(|k| k.present) {
            let created = k.created;
            let mine = || k.all.iter().filter(move |v| v.1 >= created);
            if let Some(v0) = as_of(mine(), cutoff).map(|v| v.0) {
                if mine().any(|v| v.0 < v0) {
                    k.floor = k.floor.max(v0);
                }
            }
            let newest = mine().max_by_key(|v| (v.0, v.1));
            if newest.is_some_and(|v| v.0 <= cutoff && v.2.is_none()) {
                k.present = false;
            }
        }
    }

    /// `time: event` at `t`: `None` when expired, else the true answer over
    /// every version that arrived.
    fn at(&self, key: &str, t: i64) -> Option<Option<&Value>> {
        let expired = match self.keys.get(key).filter(|k| k.present) {
            None => self.cutoff.is_some_and(|c| t < c),
            Some(k) => match as_of(k.all.iter().filter(|v| v.1 >= k.created), t) {
                Some(v) => v.0 < k.floor,
                None => t < k.floor,
            },
        };
        if expired {
            return None;
        }
        let k = self.keys.get(key);
        Some(
            k.and_then(|k| as_of(k.all.iter(), t))
                .and_then(|v| v.2.as_ref()),
        )
    }

    /// `time: latest`: `None` when the newest version since the key was
    /// (re)created is older than its floor (a removed tombstone could be
    /// newer), else the true newest value.
    fn latest(&self, key: &str) -> Option<Option<&Value>> {
        let Some(k) = self.keys.get(key) else {
            return Some(None);
        };
        let newest =
            |vs: &mut dyn Iterator<Item = &Version>| vs.max_by_key(|v| (v.0, v.1)).cloned();
        let mine = newest(&mut k.all.iter().filter(|v| v.1 >= k.created));
        if k.present && mine.is_some_and(|v| v.0 < k.floor) {
            return None;
        }
        Some(
            k.all
                .iter()
                .max_by_key(|v| (v.0, v.1))
                .and_then(|v| v.2.as_ref()),
        )
    }

    fn join(&mut self, e: &Pending) {
        let (id, key, t) = (e.0, &e.1, e.2);
        let key = key.as_ref().filter(|k| !k.is_null()).map(|k| k.to_string());
        let outs = CONFIGS
            .iter()
            .map(|(kind, time)| {
                let found = match (&key, time) {
                    (None, _) => Some(None),
                    (Some(k), JoinTime::Latest) => self.latest(k),
                    (Some(k), JoinTime::Event) => self.at(k, t),
                };
                match (found, kind) {
                    (None, _) => Out::Expired,
                    (Some(Some(v)), _) => Out::Joined(v.clone()),
                    (Some(None), JoinType::Inner) => Out::Filtered,
                    (Some(None), JoinType::Left) => Out::Unmatched,
                }
            })
            .collect();
        self.out.push((id, outs));
    }

    /// The smallest offset held per stream partition.
    fn min_offsets(&self) -> HashMap<(Arc<str>, i32), i64> {
        let mut m: HashMap<(Arc<str>, i32), i64> = HashMap::new();
        for (_, _, _, (p, o)) in &self.pending {
            let e = m.entry((Arc::from("s"), *p)).or_insert(*o);
            *e = (*e).min(*o);
        }
        m
    }
}

#[test]
fn join_core_matches_an_as_of_reference() {
    let base = seeded::base_seed("WEIR_JOIN_SEED", 0x7ab1e);
    let env = CelEnv::new();
    let root = env.root();
    let on = env.compile("value.k").expect("compiles");
    let mut totals: HashMap<&str, u64> = HashMap::new();
    for case_no in 0..CASES {
        let seed = base + case_no;
        let mut rng = Rng(seed);
        let case = generate(&mut rng);
        let mut sut = Sut {
            root: &root,
            joins: CONFIGS
                .iter()
                .map(|(kind, time)| TableJoin {
                    table: "t".into(),
                    on: on.clone(),
                    kind: *kind,
                    time: *time,
                    into: "t".into(),
                })
                .collect(),
            table: VersionedTable::new(),
            watermark: TableWatermark::new(0..case.partitions, case.table_ooo),
            hold: Hold::new(),
            stream_max: None,
            out: Vec::new(),
        };
        let mut reference = Reference::default();
        for (i, ev) in case.events.iter().enumerate() {
            sut.event(ev, &case);
            reference.event(ev, &case);
            assert_eq!(
                sut.out, reference.out,
                "seed {seed} (WEIR_JOIN_SEED={seed}): after event {i} {ev:?}\nevents: {:?}",
                case.events
            );
            assert_eq!(sut.hold.len(), reference.pending.len(), "seed {seed}: held");
            let present = reference.keys.values().filter(|k| k.present).count();
            assert_eq!(sut.table.len(), present, "seed {seed}: keys held");
            assert_eq!(
                sut.hold.min_offsets(),
                reference.min_offsets(),
                "seed {seed}: held offsets"
            );
        }
        assert!(sut.hold.is_empty(), "seed {seed}: nothing stays held");
        let streamed = case
            .events
            .iter()
            .filter(|e| matches!(e, Ev::Stream { .. }));
        assert_eq!(
            sut.out.len(),
            streamed.count(),
            "seed {seed}: every record released"
        );
        for (_, outs) in &sut.out {
            for o in outs {
                let name = match o {
                    Out::Joined(_) => "matched",
                    Out::Unmatched => "unmatched",
                    Out::Filtered => "filtered",
                    Out::Expired => "expired",
                };
                *totals.entry(name).or_default() += 1;
            }
        }
    }
    for name in ["matched", "unmatched", "filtered", "expired"] {
        assert!(
            totals.get(name).copied().unwrap_or(0) > 0,
            "base seed {base}: no case gave {name}: {totals:?}"
        );
    }
    eprintln!("join differential: {CASES} cases from seed {base}: {totals:?}");
}
