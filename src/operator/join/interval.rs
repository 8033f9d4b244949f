//! The stream-stream (interval) join of DESIGN.md §7, the pure core: a left
//! record (the pipeline's stream at the join stage) and a right record (the
//! join's `stream:`) with equal keys and |t_left − t_right| ≤ `within` join.
//! Both sides are buffered by key; `inner` emits each matching pair once, as
//! soon as both are present (the later arrival emits it); `left` and
//! `outer` emit an unmatched record once, with `null` under `into`, only
//! after the join's watermark has passed its `t + within +
//! allowed_lateness`, so no null is ever contradicted by a later match
//! (the bug of KAFKA-10847). The join's watermark is the minimum of the
//! left stream's (given by the chain) and the right stream's (the greatest
//! right event time − the bound). A record older than the watermark minus
//! `allowed_lateness` is late: every partner it could have had may be gone.
//!
//! Outputs: a pair is the left record with the right record's value under
//! `into`, at the later event time of the two; an unmatched left record is
//! the left record with `null` under `into`; an unmatched right record
//! (`outer`) is `{<into>: <right value>}` keyed by the right record's key.
//! Null or missing keys never match (as SQL's `NULL = NULL`): such a left
//! record is unmatched at once (`inner`: filtered), a right one likewise.

use crate::expr::{CelExpr, ExprError};
use crate::record::Record;
use cel::Context;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// `inner`, `left` or `outer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalType {
    /// Pairs only.
    Inner,
    /// Pairs, and unmatched left records with `null`.
    Left,
    /// Pairs, unmatched left and unmatched right records.
    Outer,
}

/// A compiled stream-stream join stage (the join itself; decoding the
/// right stream is the plan's [`crate::plan::StreamJoinDef`]).
#[derive(Debug, Clone)]
pub struct IntervalJoinDef {
    /// The join key over a left record.
    pub on: CelExpr,
    /// The join key over a right record (`stream.key`).
    pub right_key: CelExpr,
    /// The largest |t_left − t_right| that joins, ms.
    pub within: i64,
    /// How far behind the join's watermark a record is still taken, ms.
    pub allowed_lateness: i64,
    /// The right stream's watermark bound (max event time − this), ms.
    pub right_out_of_orderness: i64,
    /// `inner`, `left` or `outer`.
    pub kind: IntervalType,
    /// The top-level field the right value goes into.
    pub into: String,
}

/// What became of a record offered to the join.
#[derive(Debug, Clone, PartialEq)]
pub enum IntervalOutcome {
    /// Buffered (pairs it made, if any, are in the outputs).
    Buffered,
    /// Its key is null: never matched (`Filtered` unless an unmatched
    /// output was emitted for it).
    NullKey {
        /// An unmatched output was emitted for it (`left`/`outer`).
        emitted: bool,
    },
    /// Older than the join's watermark minus `allowed_lateness`: dropped.
    Late(Box<Record>),
}

/// Which side a buffered record is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Left,
    Right,
}

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    time: i64,
    rec: Record,
    matched: bool,
}

/// The state of one stream-stream join stage for one partition.
#[derive(Debug, Clone)]
pub struct IntervalJoin {
    def: std::sync::Arc<IntervalJoinDef>,
    /// Per key (JSON text): the buffered left and right records.
    keys: HashMap<String, [Vec<Entry>; 2]>,
    /// Every buffered record by (expiry time, seq): `t + within + lateness`.
    expiry: BTreeMap<(i64, u64), (String, Side)>,
    /// Greatest right event time seen, ms.
    right_max: i64,
    /// The join's watermark last applied, ms.
    watermark: i64,
    seq: u64,
}

fn key_text(key: &Value) -> String {
    serde_json::to_string(key).unwrap_or_default()
}

impl IntervalJoin {
    /// An empty join of `def`.
    pub fn new(def: std::sync::Arc<IntervalJoinDef>) -> Self {
        IntervalJoin {
            def,
            keys: HashMap::new(),
            expiry: BTreeMap::new(),
            right_max: i64::MIN,
            watermark: i64::MIN,
            seq: 0,
        }
    }

    /// The right stream's watermark, ms (`i64::MIN` before its first record).
    pub fn right_watermark(&self) -> i64 {
        self.right_max
            .saturating_sub(self.def.right_out_of_orderness)
    }

    /// Records buffered on both sides.
    pub fn buffered(&self) -> usize {
        self.expiry.len()
    }

    /// The join key of a left record (`on`); a missing field is null.
    ///
    /// # Errors
    /// `on` fails otherwise.
    pub fn left_key(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<Value, ExprError> {
        eval_key(&self.def.on, root, rec)
    }

    /// The join key of a right record (`stream.key`).
    ///
    /// # Errors
    /// `stream.key` fails otherwise.
    pub fn right_key(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<Value, ExprError> {
        eval_key(&self.def.right_key, root, rec)
    }

    /// A left record with its join `key` (see [`IntervalJoin::left_key`]);
    /// `left_wm` is the left stream's watermark (ms). Pairs and unmatched
    /// records go to `out`.
    ///
    /// # Errors
    /// The record's payload is not a JSON object (the right value could not
    /// be set in it); the record is given back.
    pub fn left(
        &mut self,
        key: Value,
        rec: Record,
        left_wm: i64,
        out: &mut Vec<Record>,
    ) -> Result<IntervalOutcome, Box<(ExprError, Record)>> {
        if rec.raw_bytes.is_some() || !rec.json().is_object() {
            let e = ExprError::new(
                format!("join into {}", self.def.into),
                "the record's payload is not a JSON object (expected an object to set the joined value in)",
            );
            return Err(Box::new((e, rec)));
        }
        self.advance(left_wm, out);
        Ok(self.offer(Side::Left, key, rec, out))
    }

    /// A right record with its join `key` (its event time moves the right
    /// watermark); `left_wm` as for [`IntervalJoin::left`].
    pub fn right(
        &mut self,
        key: Value,
        rec: Record,
        left_wm: i64,
        out: &mut Vec<Record>,
    ) -> IntervalOutcome {
        let t = rec.event_time;
        let outcome = self.offer(Side::Right, key, rec, out);
        if !matches!(outcome, IntervalOutcome::Late(_)) {
            self.right_max = self.right_max.max(t);
        }
        self.advance(left_wm, out);
        outcome
    }

    fn offer(
        &mut self,
        side: Side,
        key: Value,
        rec: Record,
        out: &mut Vec<Record>,
    ) -> IntervalOutcome {
        let t = rec.event_time;
        if self.watermark != i64::MIN
            && t < self.watermark.saturating_sub(self.def.allowed_lateness)
        {
            return IntervalOutcome::Late(Box::new(rec));
        }
        if key.is_null() {
            let emitted = self.unmatched(side, rec, out);
            return IntervalOutcome::NullKey { emitted };
        }
        let text = key_text(&key);
        let within = self.def.within;
        let sides = self.keys.entry(text.clone()).or_default();
        let other = match side {
            Side::Left => 1,
            Side::Right => 0,
        };
        let mut matched = false;
        let mut pairs = Vec::new();
        for e in sides[other].iter_mut() {
            if (e.time - t).abs() <= within {
                e.matched = true;
                matched = true;
                pairs.push(match side {
                    Side::Left => (rec.clone(), e.rec.clone()),
                    Side::Right => (e.rec.clone(), rec.clone()),
                });
            }
        }
        self.seq += 1;
        let seq = self.seq;
        let mine = match side {
            Side::Left => 0,
            Side::Right => 1,
        };
        sides[mine].push(Entry {
            seq,
            time: t,
            rec,
            matched,
        });
        let due = t
            .saturating_add(within)
            .saturating_add(self.def.allowed_lateness);
        self.expiry.insert((due, seq), (text, side));
        for (l, r) in pairs {
            out.push(self.pair(l, &r));
        }
        IntervalOutcome::Buffered
    }

    /// Moves the join's watermark to min(`left_wm`, the right watermark):
    /// every buffered record whose `t + within + allowed_lateness` is
    /// below it leaves; an unmatched one goes to `out` (`left`: left
    /// records, `outer`: both sides).
    pub fn advance(&mut self, left_wm: i64, out: &mut Vec<Record>) {
        let wm = left_wm.min(self.right_watermark());
        if wm <= self.watermark {
            return;
        }
        self.watermark = wm;
        while let Some((&(due, seq), _)) = self.expiry.first_key_value() {
            if due >= wm {
                break;
            }
            let Some((_, (text, side))) = self.expiry.pop_first() else {
                break;
            };
            self.expire(&text, side, seq, out);
        }
    }

    /// End of input: every buffered record leaves, the unmatched ones to
    /// `out` as [`IntervalJoin::advance`] would.
    pub fn flush(&mut self, out: &mut Vec<Record>) {
        while let Some(((_, seq), (text, side))) = self.expiry.pop_first() {
            self.expire(&text, side, seq, out);
        }
    }

    fn expire(&mut self, text: &str, side: Side, seq: u64, out: &mut Vec<Record>) {
        let Some(sides) = self.keys.get_mut(text) else {
            return;
        };
        let i = match side {
            Side::Left => 0,
            Side::Right => 1,
        };
        let Some(pos) = sides[i].iter().position(|e| e.seq == seq) else {
            return;
        };
        let e = sides[i].swap_remove(pos);
        if sides[0].is_empty() && sides[1].is_empty() {
            self.keys.remove(text);
        }
        if !e.matched {
            self.unmatched(side, e.rec, out);
        }
    }

    /// Emits `rec` unmatched when the join type wants it; whether it did.
    fn unmatched(&self, side: Side, rec: Record, out: &mut Vec<Record>) -> bool {
        let kind = self.def.kind;
        match (side, kind) {
            (Side::Left, IntervalType::Left | IntervalType::Outer) => {
                out.push(set(rec, &self.def.into, Value::Null));
                true
            }
            (Side::Right, IntervalType::Outer) => {
                let mut m = Map::new();
                m.insert(self.def.into.clone(), rec.json().clone());
                let mut o = Record::new(rec.key.clone(), Value::Object(m));
                o.timestamp = rec.timestamp;
                o.event_time = rec.event_time;
                o.origin = rec.origin.clone();
                out.push(o);
                true
            }
            _ => false,
        }
    }

    fn pair(&self, left: Record, right: &Record) -> Record {
        let t = left.event_time.max(right.event_time);
        let mut rec = set(left, &self.def.into, right.json().clone());
        rec.event_time = t;
        rec
    }
}

/// The key `expr` gives for `rec`; a missing field is a null key.
fn eval_key(
    expr: &CelExpr,
    root: &Context<'static, 'static>,
    rec: &Record,
) -> Result<Value, ExprError> {
    match expr.eval_json(root, rec) {
        Ok(k) => Ok(k),
        Err(e) if e.is_missing_key() => Ok(Value::Null),
        Err(e) => Err(e),
    }
}

/// `rec` (a JSON object payload, checked on arrival) with `value` under
/// the top-level field `into`.
fn set(mut rec: Record, into: &str, value: Value) -> Record {
    rec.materialize();
    if let Some(o) = rec.value.as_object_mut() {
        o.insert(into.to_owned(), value);
    }
    rec
}
