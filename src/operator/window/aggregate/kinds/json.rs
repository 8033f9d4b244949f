//! The aggregate functions over any JSON value: `count_distinct`, `first`,
//! `last` and `collect`.

use super::{Aggregate, ArgType, Param};
use crate::operator::window::aggregate::error::AggError;
use crate::operator::window::aggregate::state::AggState;
use crate::operator::window::aggregate::value::{canonical, json_heap, json_of, AggValue, Stamped};
use crate::operator::window::aggregate::AggSpec;
use serde_json::Value;
use std::collections::BTreeSet;
use std::mem::size_of;

/// `count_distinct(expr)`: exact, by canonical JSON text.
pub(crate) struct CountDistinct;

impl Aggregate for CountDistinct {
    fn name(&self) -> &'static str {
        "count_distinct"
    }
    fn usage(&self) -> &'static str {
        "count_distinct(expr)"
    }
    fn arg(&self) -> ArgType {
        ArgType::Json
    }
    fn new_state(&self, _: &AggSpec) -> AggState {
        AggState::Distinct(BTreeSet::new())
    }
    fn add(&self, s: &mut AggState, _: &AggSpec, v: &AggValue, _: i64) -> Result<(), AggError> {
        expect_state!(AggState::Distinct(set) = s);
        if let Some(j) = json_of(v) {
            set.insert(canonical(&j));
        }
        Ok(())
    }
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError> {
        expect_state!((AggState::Distinct(a), AggState::Distinct(b)) = (s, other));
        for x in b {
            if !a.contains(x) {
                a.insert(x.clone());
            }
        }
        Ok(())
    }
    fn result(&self, s: &AggState) -> Value {
        expect_state!(AggState::Distinct(set) = s);
        Value::from(set.len())
    }
    fn heap_bytes(&self, s: &AggState) -> usize {
        expect_state!(AggState::Distinct(set) = s);
        set.iter().map(|s| size_of::<String>() + s.capacity()).sum()
    }
}

/// `first(expr)` and `last(expr)`: the value of the record with the
/// smallest / largest event time.
pub(crate) struct Edge {
    name: &'static str,
    usage: &'static str,
    /// `true` for `last`: a later value wins ties.
    last: bool,
}

/// `first(expr)`.
pub(crate) const FIRST: Edge = Edge {
    name: "first",
    usage: "first(expr)",
    last: false,
};

/// `last(expr)`.
pub(crate) const LAST: Edge = Edge {
    name: "last",
    usage: "last(expr)",
    last: true,
};

impl Edge {
    /// Whether a value at `t` replaces `cur`.
    fn wins(&self, t: i64, cur: &Option<Stamped>) -> bool {
        cur.as_ref()
            .is_none_or(|c| if self.last { t >= c.t } else { t < c.t })
    }

    fn slot<'a>(&self, s: &'a mut AggState) -> &'a mut Option<Stamped> {
        match s {
            AggState::First(cur) if !self.last => cur,
            AggState::Last(cur) if self.last => cur,
            _ => unreachable!("AggState dispatches to the impl of its own variant"),
        }
    }

    fn get<'a>(&self, s: &'a AggState) -> &'a Option<Stamped> {
        match s {
            AggState::First(cur) | AggState::Last(cur) => cur,
            _ => unreachable!("AggState dispatches to the impl of its own variant"),
        }
    }
}

impl Aggregate for Edge {
    fn name(&self) -> &'static str {
        self.name
    }
    fn usage(&self) -> &'static str {
        self.usage
    }
    fn arg(&self) -> ArgType {
        ArgType::Json
    }
    fn new_state(&self, _: &AggSpec) -> AggState {
        if self.last {
            AggState::Last(None)
        } else {
            AggState::First(None)
        }
    }
    fn add(&self, s: &mut AggState, _: &AggSpec, v: &AggValue, t: i64) -> Result<(), AggError> {
        let cur = self.slot(s);
        if self.wins(t, cur) {
            if let Some(j) = json_of(v) {
                *cur = Some(Stamped {
                    t,
                    v: j.into_owned(),
                });
            }
        }
        Ok(())
    }
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError> {
        let a = self.slot(s);
        if let Some(b) = self.get(other) {
            if self.wins(b.t, a) {
                *a = Some(b.clone());
            }
        }
        Ok(())
    }
    fn result(&self, s: &AggState) -> Value {
        self.get(s).as_ref().map_or(Value::Null, |s| s.v.clone())
    }
    fn heap_bytes(&self, s: &AggState) -> usize {
        self.get(s).as_ref().map_or(0, |s| json_heap(&s.v))
    }
}

/// `collect(expr, N)`: the values of the `N` earliest records.
pub(crate) struct Collect;

impl Aggregate for Collect {
    fn name(&self) -> &'static str {
        "collect"
    }
    fn forms(&self) -> &'static str {
        "collect(expr, N)"
    }
    fn usage(&self) -> &'static str {
        "collect(expr, N) with N > 0"
    }
    fn param(&self) -> Param {
        Param::Bound
    }
    fn arg(&self) -> ArgType {
        ArgType::Json
    }
    fn new_state(&self, spec: &AggSpec) -> AggState {
        AggState::Collect {
            bound: spec.bound.unwrap_or(usize::MAX),
            items: Vec::new(),
        }
    }
    fn add(&self, s: &mut AggState, _: &AggSpec, v: &AggValue, t: i64) -> Result<(), AggError> {
        expect_state!(AggState::Collect { bound, items } = s);
        let at = items.partition_point(|s| s.t <= t);
        if at < *bound {
            if let Some(j) = json_of(v) {
                items.insert(
                    at,
                    Stamped {
                        t,
                        v: j.into_owned(),
                    },
                );
                items.truncate(*bound);
            }
        }
        Ok(())
    }
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError> {
        expect_state!(
            (
                AggState::Collect { bound, items },
                AggState::Collect { items: theirs, .. }
            ) = (s, other)
        );
        let n = *bound;
        let mut out = Vec::with_capacity(n.min(items.len() + theirs.len()));
        let mut mine = std::mem::take(items).into_iter().peekable();
        let mut theirs = theirs.iter().peekable();
        while out.len() < n {
            let take_mine = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(x), Some(y)) => x.t <= y.t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            out.extend(if take_mine {
                mine.next()
            } else {
                theirs.next().cloned()
            });
        }
        *items = out;
        Ok(())
    }
    fn result(&self, s: &AggState) -> Value {
        expect_state!(AggState::Collect { items, .. } = s);
        if items.is_empty() {
            Value::Null
        } else {
            Value::Array(items.iter().map(|s| s.v.clone()).collect())
        }
    }
    fn heap_bytes(&self, s: &AggState) -> usize {
        expect_state!(AggState::Collect { items, .. } = s);
        items.capacity() * size_of::<Stamped>()
            + items.iter().map(|s| json_heap(&s.v)).sum::<usize>()
    }
}
