//! Aggregate functions over the records of a window: `count()`,
//! `count(expr)`, `sum`, `min`, `max`, `avg`, `count_distinct`, `first`,
//! `last`, `collect(expr, N)` and `percentile(expr, q)`.
//!
//! As in SQL, a null or missing argument is ignored by every aggregate but
//! `count()`, and an aggregate over no values is null (`count` and
//! `count_distinct` are 0, `collect` is null rather than `[]`).
//! Integer sums stay integers (falling back to a float on overflow); `avg`
//! is a float. An argument of the wrong type is a record error: `sum`,
//! `avg` and `percentile` take numbers (`percentile` finite ones), `min` and
//! `max` numbers or strings, `count_distinct`, `first`, `last` and `collect`
//! any JSON value (number, string, bool, list, map).
//!
//! - `first(expr)` / `last(expr)`: the argument of the record with the
//!   smallest / largest event time. On equal event times `first` keeps the
//!   earliest added and `last` the latest added.
//! - `collect(expr, N)`: the arguments of the `N` records with the smallest
//!   event times, as a JSON list in event-time order (equal times in the
//!   order added). At most `N` values are kept.
//! - `count_distinct(expr)`: the exact number of distinct values, compared
//!   by their canonical JSON text (map keys sorted), so `{"a":1,"b":2}` and
//!   `{"b":2,"a":1}` are one value but `1` and `1.0` are two. Every distinct
//!   value is kept in the state.
//! - `percentile(expr, q)`: an estimate of the value of rank ⌊q·(n−1)⌋
//!   (0-based) among the `n` sorted values, from a DDSketch (Masson, Rim and
//!   Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
//!   Relative-Error Guarantees", VLDB 2019; crate `sketches-ddsketch`) with
//!   relative accuracy [`PERCENTILE_ACCURACY`] (1%): the result `r` of a true
//!   value `x` has `|r − x| ≤ 0.01·|x|`. Negative values, kept in a second
//!   store of their magnitudes, have the same guarantee; zero and values of
//!   magnitude at most 1e-9 are counted as exactly 0; `q = 0` and `q = 1`
//!   give the exact minimum and maximum. The guarantee holds while the
//!   non-zero magnitudes of one sign span less than a factor of about 6e17
//!   (2048 bins of each sign); beyond that the smallest magnitudes share a
//!   bin. The state is a few KiB at most (8 bytes per bin in use).
//!
//! Two states of one aggregate merge ([`AggState::merge`], for merging
//! session windows) into what adding all their values to one state gives:
//! merging a state of earlier adds with one of later adds equals adding them
//! in that order (which decides ties of `first`, `last`, `collect` and
//! `min`/`max`). Exceptions: float sums and `avg` round in another order, an
//! integer sum that overflows to a float depends on the order of adds, and
//! `percentile` merges exactly (bin counts add) except in the collapsed
//! range described above.
//!
//! States serialize with serde (the changelog); non-finite floats are
//! written as the strings `"NaN"`, `"inf"` and `"-inf"`.

use crate::expr::{CelEnv, CelExpr, ExprError};
use crate::record::Record;
use cel::{Context, Value as Cel};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sketches_ddsketch::{Config as SketchConfig, DDSketch};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::mem::size_of;

/// Relative accuracy of `percentile` (DDSketch's α): 1%.
pub const PERCENTILE_ACCURACY: f64 = 0.01;
/// Bins per sign of a `percentile` sketch.
const SKETCH_BINS: u32 = 2048;
/// Magnitudes at or below this count as zero in a `percentile` sketch.
const SKETCH_MIN_VALUE: f64 = 1e-9;

/// The aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    /// Records (`count()`) or non-null values (`count(expr)`).
    Count,
    /// Sum of numbers.
    Sum,
    /// Smallest number or string.
    Min,
    /// Largest number or string.
    Max,
    /// Mean of numbers, a float.
    Avg,
    /// Exact number of distinct values of any JSON type (`count_distinct(expr)`).
    CountDistinct,
    /// Value of the record with the smallest event time (`first(expr)`).
    First,
    /// Value of the record with the largest event time (`last(expr)`).
    Last,
    /// List of the values of the `N` earliest records (`collect(expr, N)`).
    Collect,
    /// Estimated `q`-quantile of numbers, a float (`percentile(expr, q)`).
    Percentile,
}

impl AggKind {
    /// How a call of this function is written, for error messages.
    fn usage(self) -> &'static str {
        match self {
            AggKind::Count => "count() or count(expr)",
            AggKind::Sum => "sum(expr)",
            AggKind::Min => "min(expr)",
            AggKind::Max => "max(expr)",
            AggKind::Avg => "avg(expr)",
            AggKind::CountDistinct => "count_distinct(expr)",
            AggKind::First => "first(expr)",
            AggKind::Last => "last(expr)",
            AggKind::Collect => "collect(expr, N) with N > 0",
            AggKind::Percentile => "percentile(expr, q) with q a number in [0, 1]",
        }
    }

    /// Whether the argument may be any JSON value.
    fn takes_json(self) -> bool {
        matches!(
            self,
            AggKind::CountDistinct | AggKind::First | AggKind::Last | AggKind::Collect
        )
    }
}

/// A compiled aggregate: output field, function, argument and parameter.
#[derive(Debug, Clone)]
pub struct AggSpec {
    /// Output field name.
    pub name: String,
    /// Function.
    pub kind: AggKind,
    /// Argument; `None` only for `count()`.
    pub arg: Option<CelExpr>,
    /// `collect`'s bound `N` (a number of values, at least 1); `None` for
    /// the other functions.
    pub bound: Option<usize>,
    /// `percentile`'s quantile `q`, in [0, 1] (0.95 is the 95th
    /// percentile); `None` for the other functions.
    pub q: Option<f64>,
}

/// Parses `fn(expr)`, `collect(expr, N)` or `percentile(expr, q)` into an
/// [`AggSpec`] named `name`. The second argument starts after the last comma
/// outside parentheses, brackets, braces and string literals, so the
/// expression may contain commas.
///
/// # Errors
/// A message ending in `(expected …)` for an unknown function, a missing or
/// superfluous argument, a missing or invalid bound (a positive integer) or
/// quantile (a number in [0, 1]), or an argument that does not compile.
pub fn parse_aggregate(env: &CelEnv, name: &str, call: &str) -> Result<AggSpec, String> {
    let call = call.trim();
    let (func, args) = match (call.find('('), call.ends_with(')')) {
        (Some(i), true) => (call[..i].trim(), call[i + 1..call.len() - 1].trim()),
        _ => {
            return Err(format!(
                "`{call}` is not an aggregate call (expected one of count(), count(expr), sum(expr), min(expr), max(expr), avg(expr), count_distinct(expr), first(expr), last(expr), collect(expr, N), percentile(expr, q))"
            ))
        }
    };
    let kind = match func {
        "count" => AggKind::Count,
        "sum" => AggKind::Sum,
        "min" => AggKind::Min,
        "max" => AggKind::Max,
        "avg" => AggKind::Avg,
        "count_distinct" => AggKind::CountDistinct,
        "first" => AggKind::First,
        "last" => AggKind::Last,
        "collect" => AggKind::Collect,
        "percentile" => AggKind::Percentile,
        other => {
            return Err(format!(
                "unknown aggregate `{other}` (expected one of count, sum, min, max, avg, count_distinct, first, last, collect, percentile)"
            ))
        }
    };
    let usage = kind.usage();
    if args.is_empty() && kind != AggKind::Count {
        return Err(format!("`{func}` needs an argument (expected {usage})"));
    }
    let (expr, extra) = match last_top_level_comma(args) {
        Some(i) => (args[..i].trim(), Some(args[i + 1..].trim())),
        None => (args, None),
    };
    let (mut bound, mut q) = (None, None);
    match (kind, extra) {
        (AggKind::Collect, None) => {
            return Err(format!("`collect` needs a bound (expected {usage})"));
        }
        (AggKind::Collect, Some(n)) => match n.parse::<usize>() {
            Ok(n) if n > 0 => bound = Some(n),
            _ => {
                return Err(format!(
                    "`collect` bound `{n}` is not a positive integer (expected {usage})"
                ))
            }
        },
        (AggKind::Percentile, None) => {
            return Err(format!("`percentile` needs a quantile (expected {usage})"));
        }
        (AggKind::Percentile, Some(t)) => match t.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => q = Some(x),
            _ => {
                return Err(format!(
                    "`percentile` quantile `{t}` is not a number in [0, 1] (expected {usage})"
                ))
            }
        },
        (_, Some(_)) => return Err(format!("`{func}` takes one argument (expected {usage})")),
        (_, None) => {}
    }
    if expr.is_empty() && kind != AggKind::Count {
        return Err(format!("`{func}` needs an argument (expected {usage})"));
    }
    let arg = if expr.is_empty() {
        None
    } else {
        Some(env.compile(expr)?)
    };
    Ok(AggSpec {
        name: name.to_owned(),
        kind,
        arg,
        bound,
        q,
    })
}

/// Byte index of the last comma of `s` outside parentheses, brackets,
/// braces and CEL string literals (`'…'`, `"…"`, triple-quoted, raw `r"…"`).
fn last_top_level_comma(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let (mut depth, mut last, mut i) = (0usize, None, 0);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                let raw = is_raw_prefix(&b[..i]);
                let triple = [q, q, q];
                let delim = if b[i..].starts_with(&triple) { 3 } else { 1 };
                i += delim;
                while i < b.len() {
                    if !raw && b[i] == b'\\' {
                        i += 2;
                    } else if b[i] == q && (delim == 1 || b[i..].starts_with(&triple)) {
                        i += delim;
                        break;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => last = Some(i),
            _ => {}
        }
        i += 1;
    }
    last
}

/// Whether the identifier just before a quote makes a raw string (`r`, `rb`, `br`).
fn is_raw_prefix(before: &[u8]) -> bool {
    let start = before
        .iter()
        .rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .map_or(0, |p| p + 1);
    let p = &before[start..];
    p.eq_ignore_ascii_case(b"r") || p.eq_ignore_ascii_case(b"rb") || p.eq_ignore_ascii_case(b"br")
}

/// An argument value, already type-checked by [`AggSpec::arg_value`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AggValue {
    /// A null or missing argument.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(#[serde(with = "float_text")] f64),
    /// A string (min/max only).
    Str(String),
    /// Any JSON value but null (count_distinct, first, last, collect).
    Json(Value),
}

impl AggSpec {
    /// Evaluates the argument for `rec`. A missing field (`No such key`) is
    /// null, as in SQL. `count_distinct`, `first`, `last` and `collect` give
    /// [`AggValue::Json`] (converted by [`CelExpr::eval_json`]); the others
    /// a number or, for min/max, a string.
    ///
    /// # Errors
    /// [`ExprError`] when evaluation fails otherwise, the value has no JSON
    /// form, or the type does not suit the function.
    pub fn arg_value(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<AggValue, ExprError> {
        let Some(expr) = &self.arg else {
            return Ok(AggValue::Null);
        };
        if self.kind.takes_json() {
            return match expr.eval_json(root, rec) {
                Ok(Value::Null) => Ok(AggValue::Null),
                Ok(v) => Ok(AggValue::Json(v)),
                Err(e) if e.message.starts_with("No such key") => Ok(AggValue::Null),
                Err(e) => Err(e),
            };
        }
        let v = match expr.eval(root, rec) {
            Ok(v) => v,
            Err(e) if e.message.starts_with("No such key") => return Ok(AggValue::Null),
            Err(e) => return Err(e),
        };
        let wrong = |what: &str| ExprError {
            expr: expr.source().to_owned(),
            message: format!("gave {what} (expected {})", self.expects()),
        };
        Ok(match v {
            Cel::Null => AggValue::Null,
            _ if self.kind == AggKind::Count => AggValue::Int(1),
            Cel::Int(i) => AggValue::Int(i),
            Cel::UInt(u) => i64::try_from(u)
                .map(AggValue::Int)
                .unwrap_or(AggValue::Float(u as f64)),
            Cel::Float(f) if self.kind == AggKind::Percentile && !f.is_finite() => {
                return Err(wrong(&f.to_string()))
            }
            Cel::Float(f) => AggValue::Float(f),
            Cel::String(s) if matches!(self.kind, AggKind::Min | AggKind::Max) => {
                AggValue::Str(s.to_string())
            }
            other => return Err(wrong(&format!("{other:?}"))),
        })
    }

    fn expects(&self) -> &'static str {
        match self.kind {
            AggKind::Min | AggKind::Max => "a number or a string",
            AggKind::Percentile => "a finite number",
            _ => "a number",
        }
    }
}

/// A value with the event time (ms) of its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// Event time of the record, ms since the epoch.
    pub t: i64,
    /// The argument's value (never null).
    pub v: Value,
}

/// A DDSketch of `percentile`'s values (see the module doc for accuracy).
/// Two sketches are equal when their serialized forms are (same bins).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sketch(DDSketch);

impl Sketch {
    fn new() -> Self {
        Sketch(DDSketch::new(SketchConfig::new(
            PERCENTILE_ACCURACY,
            SKETCH_BINS,
            SKETCH_MIN_VALUE,
        )))
    }

    /// Refuses to let the running sum (kept by the sketch, and written to
    /// the changelog, where JSON has no infinity) leave the float range.
    fn check_sum(&self, more: f64) -> Result<(), String> {
        if (self.0.sum().unwrap_or(0.0) + more).is_finite() {
            Ok(())
        } else {
            Err("the sum of percentile values leaves the float range (expected values of magnitude well below 1e308)".into())
        }
    }
}

impl fmt::Debug for Sketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sketch")
            .field("count", &self.0.count())
            .field("min", &self.0.min())
            .field("max", &self.0.max())
            .field("bins", &self.0.length())
            .finish()
    }
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(&self.0).ok() == serde_json::to_value(&other.0).ok()
    }
}

/// Running state of one aggregate in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AggState {
    /// Count so far.
    Count(i64),
    /// Sum so far: integer while every value was, else float; `None` before any value.
    Sum(Option<AggValue>),
    /// Extreme so far (min or max, as the spec says).
    Extreme(Option<AggValue>),
    /// Sum and count of values.
    Avg(#[serde(with = "float_text")] f64, i64),
    /// Canonical JSON texts of the distinct values.
    Distinct(BTreeSet<String>),
    /// Earliest value so far.
    First(Option<Stamped>),
    /// Latest value so far.
    Last(Option<Stamped>),
    /// The `bound` earliest values, sorted by event time (ties in order added).
    Collect {
        /// At most this many values are kept.
        bound: usize,
        /// The values.
        items: Vec<Stamped>,
    },
    /// Sketch of the values (`None` before any) and the quantile asked for.
    Percentile {
        /// Quantile in [0, 1].
        q: f64,
        /// Sketch of the values so far.
        sketch: Option<Box<Sketch>>,
    },
}

impl AggState {
    /// The empty state for `spec`. A `collect` spec without a bound keeps
    /// every value; a `percentile` spec without a quantile gives the median
    /// ([`parse_aggregate`] always sets both).
    pub fn new(spec: &AggSpec) -> Self {
        match spec.kind {
            AggKind::Count => AggState::Count(0),
            AggKind::Sum => AggState::Sum(None),
            AggKind::Min | AggKind::Max => AggState::Extreme(None),
            AggKind::Avg => AggState::Avg(0.0, 0),
            AggKind::CountDistinct => AggState::Distinct(BTreeSet::new()),
            AggKind::First => AggState::First(None),
            AggKind::Last => AggState::Last(None),
            AggKind::Collect => AggState::Collect {
                bound: spec.bound.unwrap_or(usize::MAX),
                items: Vec::new(),
            },
            AggKind::Percentile => AggState::Percentile {
                q: spec.q.unwrap_or(0.5),
                sketch: None,
            },
        }
    }

    /// Folds in the argument value `v` of a record with event time
    /// `event_time` (ms). `count()` (a spec without argument) counts every
    /// record; the other aggregates ignore a null `v`.
    ///
    /// # Errors
    /// A message ending in `(expected …)` when the value's type does not
    /// suit the function, when min/max meet values of different types
    /// (number vs string), or when a percentile value is not finite or its
    /// running sum leaves the float range; the state is unchanged then.
    pub fn add(&mut self, spec: &AggSpec, v: &AggValue, event_time: i64) -> Result<(), String> {
        if let AggState::Count(n) = self {
            if spec.arg.is_none() || !is_null(v) {
                *n += 1;
            }
            return Ok(());
        }
        if is_null(v) {
            return Ok(());
        }
        match self {
            AggState::Count(_) => {}
            AggState::Sum(acc) => sum_into(acc, v)?,
            AggState::Extreme(cur) => extreme_into(spec.kind, cur, v)?,
            AggState::Avg(sum, n) => {
                *sum += as_f64(&number(v)?);
                *n += 1;
            }
            AggState::Distinct(set) => {
                if let Some(j) = json_of(v) {
                    set.insert(canonical(&j));
                }
            }
            AggState::First(cur) => {
                if cur.as_ref().is_none_or(|c| event_time < c.t) {
                    if let Some(j) = json_of(v) {
                        *cur = Some(Stamped {
                            t: event_time,
                            v: j.into_owned(),
                        });
                    }
                }
            }
            AggState::Last(cur) => {
                if cur.as_ref().is_none_or(|c| event_time >= c.t) {
                    if let Some(j) = json_of(v) {
                        *cur = Some(Stamped {
                            t: event_time,
                            v: j.into_owned(),
                        });
                    }
                }
            }
            AggState::Collect { bound, items } => {
                let at = items.partition_point(|s| s.t <= event_time);
                if at < *bound {
                    if let Some(j) = json_of(v) {
                        items.insert(
                            at,
                            Stamped {
                                t: event_time,
                                v: j.into_owned(),
                            },
                        );
                        items.truncate(*bound);
                    }
                }
            }
            AggState::Percentile { sketch, .. } => {
                let x = as_f64(&number(v)?);
                if !x.is_finite() {
                    return Err(format!("gave {x} (expected a finite number)"));
                }
                let s = sketch.get_or_insert_with(|| Box::new(Sketch::new()));
                s.check_sum(x)?;
                s.0.add(x);
            }
        }
        Ok(())
    }

    /// Whether [`AggState::add`] of `v` would succeed, without changing the
    /// state: a window stage checks every aggregate of every window a record
    /// belongs to first, so a failing record changes no window.
    ///
    /// # Errors
    /// The message [`AggState::add`] would give.
    pub fn check(&self, v: &AggValue) -> Result<(), String> {
        if is_null(v) {
            return Ok(());
        }
        match self {
            AggState::Sum(_) | AggState::Avg(..) => number(v).map(|_| ()),
            AggState::Extreme(cur) => {
                let v = comparable(v)?;
                match cur {
                    Some(c) if compare(&v, c).is_none() => Err(
                        "cannot compare a number with a string (expected values of one type)"
                            .to_owned(),
                    ),
                    _ => Ok(()),
                }
            }
            AggState::Percentile { sketch, .. } => {
                let x = as_f64(&number(v)?);
                if !x.is_finite() {
                    return Err(format!("gave {x} (expected a finite number)"));
                }
                sketch.as_ref().map_or(Ok(()), |s| s.check_sum(x))
            }
            _ => Ok(()),
        }
    }

    /// Merges `other`, a state of the same aggregate `spec` whose records
    /// came after this state's, into this one: the result is that of adding
    /// this state's records and then `other`'s to one state (see the module
    /// doc for the exceptions of float rounding). On equal event times,
    /// `first` keeps this state's value, `last` takes `other`'s and
    /// `collect` puts this state's values first.
    ///
    /// # Errors
    /// A message ending in `(expected …)` when the states are of different
    /// aggregates, min/max states hold a number and a string, or percentile
    /// sketches differ in configuration or their summed values leave the
    /// float range; the state is unchanged then.
    pub fn merge(&mut self, spec: &AggSpec, other: &AggState) -> Result<(), String> {
        match (self, other) {
            (AggState::Count(a), AggState::Count(b)) => *a += b,
            (AggState::Sum(a), AggState::Sum(b)) => {
                if let Some(b) = b {
                    sum_into(a, b)?;
                }
            }
            (AggState::Extreme(a), AggState::Extreme(b)) => {
                if let Some(b) = b {
                    extreme_into(spec.kind, a, b)?;
                }
            }
            (AggState::Avg(s, n), AggState::Avg(s2, n2)) => {
                *s += s2;
                *n += n2;
            }
            (AggState::Distinct(a), AggState::Distinct(b)) => {
                for x in b {
                    if !a.contains(x) {
                        a.insert(x.clone());
                    }
                }
            }
            (AggState::First(a), AggState::First(b)) => {
                if let Some(b) = b {
                    if a.as_ref().is_none_or(|a| b.t < a.t) {
                        *a = Some(b.clone());
                    }
                }
            }
            (AggState::Last(a), AggState::Last(b)) => {
                if let Some(b) = b {
                    if a.as_ref().is_none_or(|a| b.t >= a.t) {
                        *a = Some(b.clone());
                    }
                }
            }
            (AggState::Collect { bound, items }, AggState::Collect { items: theirs, .. }) => {
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
            }
            (AggState::Percentile { sketch: a, .. }, AggState::Percentile { sketch: b, .. }) => {
                if let Some(b) = b {
                    match a {
                        None => *a = Some(b.clone()),
                        Some(a) => {
                            a.check_sum(b.0.sum().unwrap_or(0.0))?;
                            a.0.merge(&b.0).map_err(|e| {
                                format!("cannot merge percentile sketches: {e} (expected sketches of one accuracy)")
                            })?;
                        }
                    }
                }
            }
            (a, b) => {
                return Err(format!(
                    "cannot merge a {} state with a {} state (expected states of one aggregate)",
                    a.label(),
                    b.label()
                ))
            }
        }
        Ok(())
    }

    /// The result as JSON; null for an aggregate over no values (0 for
    /// `count` and `count_distinct`). `collect` gives a list, `percentile`
    /// a float.
    pub fn result(&self) -> Value {
        match self {
            AggState::Count(n) => Value::from(*n),
            AggState::Sum(v) | AggState::Extreme(v) => v.as_ref().map_or(Value::Null, to_json),
            AggState::Avg(_, 0) => Value::Null,
            AggState::Avg(sum, n) => float(*sum / *n as f64),
            AggState::Distinct(set) => Value::from(set.len()),
            AggState::First(v) | AggState::Last(v) => {
                v.as_ref().map_or(Value::Null, |s| s.v.clone())
            }
            AggState::Collect { items, .. } if items.is_empty() => Value::Null,
            AggState::Collect { items, .. } => {
                Value::Array(items.iter().map(|s| s.v.clone()).collect())
            }
            AggState::Percentile { q, sketch } => sketch
                .as_ref()
                .and_then(|s| s.0.quantile(*q).ok().flatten())
                .map_or(Value::Null, float),
        }
    }

    /// Estimated memory of the state in bytes: its inline size plus what it
    /// holds on the heap (strings, JSON values, lists, sketch bins). An
    /// estimate for the `weir_state_bytes` metric, not an exact count of
    /// allocator use.
    pub fn approx_bytes(&self) -> usize {
        size_of::<Self>()
            + match self {
                AggState::Count(_) | AggState::Avg(..) => 0,
                AggState::Sum(v) | AggState::Extreme(v) => v.as_ref().map_or(0, value_heap),
                AggState::Distinct(set) => {
                    set.iter().map(|s| size_of::<String>() + s.capacity()).sum()
                }
                AggState::First(v) | AggState::Last(v) => v.as_ref().map_or(0, |s| json_heap(&s.v)),
                AggState::Collect { items, .. } => {
                    items.capacity() * size_of::<Stamped>()
                        + items.iter().map(|s| json_heap(&s.v)).sum::<usize>()
                }
                AggState::Percentile { sketch, .. } => sketch
                    .as_ref()
                    .map_or(0, |s| size_of::<Sketch>() + s.0.length() * size_of::<u64>()),
            }
    }

    fn label(&self) -> &'static str {
        match self {
            AggState::Count(_) => "count",
            AggState::Sum(_) => "sum",
            AggState::Extreme(_) => "min/max",
            AggState::Avg(..) => "avg",
            AggState::Distinct(_) => "count_distinct",
            AggState::First(_) => "first",
            AggState::Last(_) => "last",
            AggState::Collect { .. } => "collect",
            AggState::Percentile { .. } => "percentile",
        }
    }
}

fn is_null(v: &AggValue) -> bool {
    matches!(v, AggValue::Null | AggValue::Json(Value::Null))
}

/// `v` as JSON, `None` when that is null (a NaN float).
fn json_of(v: &AggValue) -> Option<Cow<'_, Value>> {
    let j = match v {
        AggValue::Json(j) => Cow::Borrowed(j),
        other => Cow::Owned(to_json(other)),
    };
    (!j.is_null()).then_some(j)
}

/// `v` as an `Int` or `Float` (a JSON number included).
fn number(v: &AggValue) -> Result<AggValue, String> {
    match v {
        AggValue::Int(_) | AggValue::Float(_) => Ok(v.clone()),
        AggValue::Json(Value::Number(n)) => Ok(n.as_i64().map_or_else(
            || AggValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            AggValue::Int,
        )),
        other => Err(format!("gave {} (expected a number)", to_json(other))),
    }
}

/// `v` as a number or a `Str`, for min/max.
fn comparable(v: &AggValue) -> Result<Cow<'_, AggValue>, String> {
    match v {
        AggValue::Int(_) | AggValue::Float(_) | AggValue::Str(_) => Ok(Cow::Borrowed(v)),
        AggValue::Json(Value::String(s)) => Ok(Cow::Owned(AggValue::Str(s.clone()))),
        other => number(other)
            .map(Cow::Owned)
            .map_err(|_| format!("gave {} (expected a number or a string)", to_json(other))),
    }
}

fn sum_into(acc: &mut Option<AggValue>, v: &AggValue) -> Result<(), String> {
    let v = number(v)?;
    *acc = Some(match (acc.take(), v) {
        (None, x) => x,
        (Some(AggValue::Int(a)), AggValue::Int(b)) => match a.checked_add(b) {
            Some(s) => AggValue::Int(s),
            None => AggValue::Float(a as f64 + b as f64),
        },
        (Some(a), b) => AggValue::Float(as_f64(&a) + as_f64(&b)),
    });
    Ok(())
}

fn extreme_into(kind: AggKind, cur: &mut Option<AggValue>, v: &AggValue) -> Result<(), String> {
    let v = comparable(v)?;
    let replace = match cur {
        None => true,
        Some(c) => {
            let ord = compare(&v, c).ok_or_else(|| {
                "cannot compare a number with a string (expected values of one type)".to_owned()
            })?;
            match kind {
                AggKind::Min => ord == Ordering::Less,
                _ => ord == Ordering::Greater,
            }
        }
    };
    if replace {
        *cur = Some(v.into_owned());
    }
    Ok(())
}

fn as_f64(v: &AggValue) -> f64 {
    match v {
        AggValue::Int(i) => *i as f64,
        AggValue::Float(f) => *f,
        _ => f64::NAN,
    }
}

fn compare(a: &AggValue, b: &AggValue) -> Option<Ordering> {
    match (a, b) {
        (AggValue::Str(x), AggValue::Str(y)) => Some(x.cmp(y)),
        (AggValue::Int(x), AggValue::Int(y)) => Some(x.cmp(y)),
        (AggValue::Str(_), _) | (_, AggValue::Str(_)) => None,
        (x, y) => as_f64(x).partial_cmp(&as_f64(y)),
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn to_json(v: &AggValue) -> Value {
    match v {
        AggValue::Null => Value::Null,
        AggValue::Int(i) => Value::from(*i),
        AggValue::Float(f) => float(*f),
        AggValue::Str(s) => Value::String(s.clone()),
        AggValue::Json(v) => v.clone(),
    }
}

/// Compact JSON text of `v` with map keys sorted at every level.
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            Value::Object(o) => {
                let mut entries: Vec<_> = o.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, x)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(x, out);
                }
                out.push('}');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn value_heap(v: &AggValue) -> usize {
    match v {
        AggValue::Str(s) => s.capacity(),
        AggValue::Json(v) => json_heap(v),
        AggValue::Null | AggValue::Int(_) | AggValue::Float(_) => 0,
    }
}

/// Estimated heap bytes of a JSON value (an object entry also costs its
/// hash and index slot in the insertion-ordered map).
fn json_heap(v: &Value) -> usize {
    match v {
        Value::String(s) => s.capacity(),
        Value::Array(a) => {
            a.capacity() * size_of::<Value>() + a.iter().map(json_heap).sum::<usize>()
        }
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| {
                size_of::<String>()
                    + size_of::<Value>()
                    + 2 * size_of::<usize>()
                    + k.capacity()
                    + json_heap(x)
            })
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// Serde for an `f64` that may be non-finite: JSON has no NaN or infinity,
/// so those are written as the strings `"NaN"`, `"inf"` and `"-inf"`.
mod float_text {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(f: &f64, s: S) -> Result<S::Ok, S::Error> {
        if f.is_finite() {
            s.serialize_f64(*f)
        } else if f.is_nan() {
            s.serialize_str("NaN")
        } else if *f > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, \"NaN\", \"inf\" or \"-inf\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                match v {
                    "NaN" => Ok(f64::NAN),
                    "inf" => Ok(f64::INFINITY),
                    "-inf" => Ok(f64::NEG_INFINITY),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(call: &str) -> AggSpec {
        parse_aggregate(&CelEnv::new(), "x", call).unwrap()
    }

    /// Folds `(event_time, value)` pairs (JSON null is a null argument).
    fn state(spec: &AggSpec, vals: &[(i64, Value)]) -> AggState {
        let mut s = AggState::new(spec);
        for (t, v) in vals {
            let v = match v {
                Value::Null => AggValue::Null,
                v if spec.kind.takes_json() => AggValue::Json(v.clone()),
                Value::String(s) => AggValue::Str(s.clone()),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => AggValue::Int(i),
                    None => AggValue::Float(n.as_f64().unwrap()),
                },
                other => panic!("no AggValue for {other}"),
            };
            s.add(spec, &v, *t).unwrap();
        }
        s
    }

    fn fold(call: &str, vals: &[AggValue]) -> Value {
        let spec = spec(call);
        let mut s = AggState::new(&spec);
        for v in vals {
            s.add(&spec, v, 0).unwrap();
        }
        s.result()
    }

    fn timed(vals: &[(i64, Value)]) -> Vec<(i64, Value)> {
        vals.to_vec()
    }

    /// The value of rank ⌊q·(n−1)⌋ among `vals`, sorted.
    fn exact_quantile(vals: &[f64], q: f64) -> f64 {
        let mut v = vals.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[(q * (v.len() as f64 - 1.0)) as usize]
    }

    #[test]
    fn sql_null_semantics_and_integer_sums() {
        use AggValue::*;
        assert_eq!(fold("sum(value.x)", &[Int(1), Null, Int(2)]), json!(3));
        assert_eq!(fold("sum(value.x)", &[Int(1), Float(0.5)]), json!(1.5));
        assert_eq!(fold("sum(value.x)", &[Null]), json!(null));
        assert_eq!(fold("avg(value.x)", &[Int(1), Int(2), Null]), json!(1.5));
        assert_eq!(fold("avg(value.x)", &[]), json!(null));
        assert_eq!(
            fold("min(value.x)", &[Int(3), Float(-1.5), Int(2)]),
            json!(-1.5)
        );
        assert_eq!(
            fold("max(value.x)", &[Str("a".into()), Str("b".into())]),
            json!("b")
        );
        assert_eq!(fold("count(value.x)", &[Int(1), Null, Int(1)]), json!(2));
        assert_eq!(fold("count()", &[Int(1), Null, Null]), json!(3));
        assert_eq!(
            fold("sum(value.x)", &[Int(i64::MAX), Int(1)]),
            json!(9.223372036854776e18)
        );
        for call in [
            "count_distinct(value.x)",
            "first(value.x)",
            "last(value.x)",
            "collect(value.x, 2)",
            "percentile(value.x, 0.5)",
        ] {
            let want = if call.starts_with("count") {
                json!(0)
            } else {
                json!(null)
            };
            assert_eq!(fold(call, &[Null, Json(json!(null))]), want, "{call}");
            assert_eq!(fold(call, &[]), want, "{call}");
        }
    }

    #[test]
    fn first_and_last_follow_event_time_with_ties_in_order_added() {
        let vals = timed(&[
            (5, json!("b")),
            (3, json!({"k": [1, 2]})),
            (3, json!("a2")),
            (1, json!(null)),
            (9, json!([true])),
            (9, json!(2.5)),
        ]);
        assert_eq!(
            state(&spec("first(value.x)"), &vals).result(),
            json!({"k": [1, 2]})
        );
        assert_eq!(state(&spec("last(value.x)"), &vals).result(), json!(2.5));
    }

    #[test]
    fn collect_keeps_the_n_earliest_in_event_time_order() {
        let vals = timed(&[
            (5, json!(1)),
            (3, json!("two")),
            (3, json!([3])),
            (1, json!(null)),
            (7, json!(4)),
            (2, json!({"five": 5})),
            (3, json!(false)),
        ]);
        assert_eq!(
            state(&spec("collect(value.x, 3)"), &vals).result(),
            json!([{"five": 5}, "two", [3]])
        );
        assert_eq!(
            state(&spec("collect(value.x, 100)"), &vals).result(),
            json!([{"five": 5}, "two", [3], false, 1, 4])
        );
        assert_eq!(
            state(&spec("collect(value.x, 1)"), &vals).result(),
            json!([{"five": 5}])
        );
    }

    #[test]
    fn count_distinct_compares_canonical_json() {
        let vals = timed(&[
            (0, json!(1)),
            (0, json!(1.0)),
            (0, json!("1")),
            (0, json!(1)),
            (0, json!({"a": 1, "b": [2, {"c": 3, "d": 4}]})),
            (0, json!({"b": [2, {"d": 4, "c": 3}], "a": 1})),
            (0, json!([1, 2])),
            (0, json!([2, 1])),
            (0, json!(null)),
            (0, json!(true)),
        ]);
        // 1, 1.0, "1", the map, [1,2], [2,1], true
        assert_eq!(
            state(&spec("count_distinct(value.x)"), &vals).result(),
            json!(7)
        );
    }

    #[test]
    fn percentile_handles_negatives_and_zero_within_one_percent() {
        let p = |q: &str, vals: &[f64]| {
            let s = spec(&format!("percentile(value.x, {q})"));
            let v: Vec<_> = vals.iter().map(|x| (0, json!(x))).collect();
            state(&s, &v).result().as_f64().unwrap()
        };
        let small = [-5.0, 0.0, 0.0, 0.0, 5.0];
        assert_eq!(p("0", &small), -5.0);
        assert_eq!(p("0.25", &small), 0.0);
        assert_eq!(p("0.5", &small), 0.0);
        assert_eq!(p("1", &small), 5.0);
        let neg = [-10.0, -20.0, -30.0];
        assert!((p("0.5", &neg) + 20.0).abs() <= 0.2);
        // Flight delays: many negatives, a long positive tail.
        // -60.0 to 439.9 by 0.1 (0 included) in scrambled order, and a tail.
        let delays: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919) % 5000) as f64 / 10.0 - 60.0)
            .chain((1..=50).map(|i| 500.0 * i as f64))
            .collect();
        assert!(delays.iter().any(|d| *d < 0.0) && delays.contains(&0.0));
        for q in [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0] {
            let got = p(&q.to_string(), &delays);
            let want = exact_quantile(&delays, q);
            assert!(
                (got - want).abs() <= PERCENTILE_ACCURACY * want.abs() * (1.0 + 1e-12),
                "q {q}: {got} vs exact {want}"
            );
        }
    }

    #[test]
    fn percentile_rejects_non_finite_and_non_numbers() {
        let s = spec("percentile(value.x, 0.5)");
        let mut st = AggState::new(&s);
        assert_eq!(
            st.add(&s, &AggValue::Float(f64::INFINITY), 0).unwrap_err(),
            "gave inf (expected a finite number)"
        );
        assert_eq!(
            st.add(&s, &AggValue::Str("x".into()), 0).unwrap_err(),
            "gave \"x\" (expected a number)"
        );
        st.add(&s, &AggValue::Float(1e308), 0).unwrap();
        assert!(st.add(&s, &AggValue::Float(1e308), 0).is_err());
        let got = st.result().as_f64().unwrap();
        assert!((got - 1e308).abs() <= PERCENTILE_ACCURACY * 1e308, "{got}");
        let nan = spec("first(value.x)");
        let mut st = AggState::new(&nan);
        st.add(&nan, &AggValue::Float(f64::NAN), 0).unwrap();
        assert_eq!(st, AggState::First(None), "NaN has no JSON form: null");
    }

    /// Records with ties, nulls, negatives, zeros and mixed JSON types.
    fn records() -> Vec<(i64, Value)> {
        (0..60)
            .map(|i: i64| {
                let t = (i * 37) % 11;
                let v = match i % 6 {
                    0 => json!(null),
                    1 => json!(i - 30),
                    2 => json!(0),
                    3 => json!(-(i * i)),
                    _ => json!(i % 9),
                };
                (t, v)
            })
            .collect()
    }

    const ALL: [&str; 12] = [
        "count()",
        "count(value.x)",
        "sum(value.x)",
        "min(value.x)",
        "max(value.x)",
        "avg(value.x)",
        "count_distinct(value.x)",
        "first(value.x)",
        "last(value.x)",
        "collect(value.x, 7)",
        "percentile(value.x, 0.9)",
        "percentile(value.x, 0.1)",
    ];

    #[test]
    fn merge_equals_adding_all_values_to_one_state() {
        let recs = records();
        for call in ALL {
            let s = spec(call);
            let whole = state(&s, &recs);
            for k in [0, 1, 17, 30, 59, 60] {
                let (a, b) = recs.split_at(k);
                let mut merged = state(&s, a);
                merged.merge(&s, &state(&s, b)).unwrap();
                assert_eq!(merged.result(), whole.result(), "{call} split at {k}");
                // Order-free aggregates also merge the other way round.
                if !call.starts_with("first")
                    && !call.starts_with("last")
                    && !call.starts_with("collect")
                {
                    let mut rev = state(&s, b);
                    rev.merge(&s, &state(&s, a)).unwrap();
                    assert_eq!(rev.result(), whole.result(), "{call} reversed at {k}");
                }
            }
        }
    }

    #[test]
    fn percentile_merge_equals_one_sketch_and_exact_within_one_percent() {
        let vals: Vec<f64> = (0..3000)
            .map(|i| ((i * 31) % 1000) as f64 - 300.0)
            .collect();
        let recs: Vec<_> = vals.iter().map(|v| (0, json!(v))).collect();
        for q in [0.05, 0.5, 0.95, 0.99] {
            let s = spec(&format!("percentile(value.dep_delay, {q})"));
            let whole = state(&s, &recs);
            let mut merged = AggState::new(&s);
            for part in recs.chunks(700) {
                merged.merge(&s, &state(&s, part)).unwrap();
            }
            assert_eq!(merged.result(), whole.result(), "q {q}");
            let got = merged.result().as_f64().unwrap();
            let want = exact_quantile(&vals, q);
            assert!(
                (got - want).abs() <= PERCENTILE_ACCURACY * want.abs() * (1.0 + 1e-12),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn merge_keeps_ties_in_order_of_the_states() {
        let a = timed(&[(5, json!("a5")), (1, json!("a1"))]);
        let b = timed(&[(5, json!("b5")), (1, json!("b1")), (0, json!("b0"))]);
        for call in ["first(value.x)", "last(value.x)", "collect(value.x, 3)"] {
            let s = spec(call);
            let mut m = state(&s, &a);
            m.merge(&s, &state(&s, &b)).unwrap();
            let both: Vec<_> = a.iter().chain(&b).cloned().collect();
            assert_eq!(m, state(&s, &both), "{call}");
        }
        let s = spec("collect(value.x, 3)");
        let mut m = state(&s, &a);
        m.merge(&s, &state(&s, &b)).unwrap();
        assert_eq!(m.result(), json!(["b0", "a1", "b1"]));
    }

    #[test]
    fn merging_different_aggregates_is_an_error() {
        let (c, f) = (spec("count()"), spec("first(value.x)"));
        assert_eq!(
            AggState::new(&c).merge(&c, &AggState::new(&f)).unwrap_err(),
            "cannot merge a count state with a first state (expected states of one aggregate)"
        );
    }

    #[test]
    fn serde_round_trip_gives_equal_states_and_results() {
        let recs = records();
        let mut states: Vec<AggState> = ALL
            .iter()
            .flat_map(|call| {
                let s = spec(call);
                [AggState::new(&s), state(&s, &recs)]
            })
            .collect();
        states.push(AggState::Sum(Some(AggValue::Float(f64::INFINITY))));
        states.push(AggState::Avg(f64::NEG_INFINITY, 2));
        for st in &states {
            let text = serde_json::to_string(st).unwrap();
            let back: AggState = serde_json::from_str(&text).unwrap();
            assert_eq!(&back, st, "{text}");
            assert_eq!(back.result(), st.result(), "{text}");
        }
        let nan = AggState::Avg(f64::NAN, 1);
        let text = serde_json::to_string(&nan).unwrap();
        assert_eq!(text, r#"{"Avg":["NaN",1]}"#);
        let back: AggState = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, AggState::Avg(f, 1) if f.is_nan()));
        // A restored sketch keeps merging with fresh ones.
        let s = spec("percentile(value.x, 0.5)");
        let mut restored: AggState =
            serde_json::from_str(&serde_json::to_string(&state(&s, &recs)).unwrap()).unwrap();
        restored.merge(&s, &state(&s, &recs)).unwrap();
        let twice: Vec<_> = recs.iter().chain(&recs).cloned().collect();
        assert_eq!(restored.result(), state(&s, &twice).result());
    }

    #[test]
    fn approx_bytes_grows_with_what_is_kept() {
        let s = spec("collect(value.x, 1000)");
        let empty = AggState::new(&s);
        assert_eq!(empty.approx_bytes(), size_of::<AggState>());
        let big = state(&s, &[(0, json!("x".repeat(1000))), (1, json!([1, 2, 3]))]);
        assert!(big.approx_bytes() >= size_of::<AggState>() + 1000 + 3 * size_of::<Value>());
        let p = spec("percentile(value.x, 0.5)");
        let sk = state(&p, &[(0, json!(1.0)), (0, json!(-1.0))]);
        assert!(sk.approx_bytes() >= 2 * 128 * 8);
        let d = spec("count_distinct(value.x)");
        let one = state(&d, &[(0, json!("abc"))]).approx_bytes();
        let two = state(&d, &[(0, json!("abc")), (0, json!("abd"))]).approx_bytes();
        assert!(two > one);
    }

    #[test]
    fn parses_calls_and_rejects_unknown() {
        let env = CelEnv::new();
        let a = parse_aggregate(&env, "f", "count()").unwrap();
        assert_eq!((a.kind, a.arg.is_none()), (AggKind::Count, true));
        let a = parse_aggregate(&env, "d", " avg(value.dep_delay) ").unwrap();
        assert_eq!(a.kind, AggKind::Avg);
        let a = parse_aggregate(&env, "p", "percentile(value.dep_delay, 0.95)").unwrap();
        assert_eq!(
            (a.kind, a.q, a.bound),
            (AggKind::Percentile, Some(0.95), None)
        );
        assert_eq!(a.arg.unwrap().source(), "value.dep_delay");
        let a = parse_aggregate(&env, "c", "collect( value.tail , 10 )").unwrap();
        assert_eq!((a.kind, a.bound, a.q), (AggKind::Collect, Some(10), None));
        assert_eq!(a.arg.unwrap().source(), "value.tail");
        for (call, kind) in [
            ("count_distinct(value.origin)", AggKind::CountDistinct),
            ("first(value.a)", AggKind::First),
            ("last(value.a)", AggKind::Last),
        ] {
            assert_eq!(parse_aggregate(&env, "x", call).unwrap().kind, kind);
        }
        assert_eq!(
            parse_aggregate(&env, "x", "median(value.a)").unwrap_err(),
            "unknown aggregate `median` (expected one of count, sum, min, max, avg, count_distinct, first, last, collect, percentile)"
        );
        assert_eq!(
            parse_aggregate(&env, "x", "sum()").unwrap_err(),
            "`sum` needs an argument (expected sum(expr))"
        );
        assert_eq!(
            parse_aggregate(&env, "x", "sum(value.a, 2)").unwrap_err(),
            "`sum` takes one argument (expected sum(expr))"
        );
        assert_eq!(
            parse_aggregate(&env, "x", "value.a").unwrap_err(),
            "`value.a` is not an aggregate call (expected one of count(), count(expr), sum(expr), min(expr), max(expr), avg(expr), count_distinct(expr), first(expr), last(expr), collect(expr, N), percentile(expr, q))"
        );
    }

    #[test]
    fn parse_errors_of_collect_and_percentile() {
        let env = CelEnv::new();
        let err = |call: &str| parse_aggregate(&env, "x", call).unwrap_err();
        assert_eq!(
            err("collect(value.x)"),
            "`collect` needs a bound (expected collect(expr, N) with N > 0)"
        );
        assert_eq!(
            err("collect()"),
            "`collect` needs an argument (expected collect(expr, N) with N > 0)"
        );
        assert_eq!(
            err("collect(, 3)"),
            "`collect` needs an argument (expected collect(expr, N) with N > 0)"
        );
        assert_eq!(
            err("collect(value.x, 0)"),
            "`collect` bound `0` is not a positive integer (expected collect(expr, N) with N > 0)"
        );
        assert_eq!(
            err("collect(value.x, -2)"),
            "`collect` bound `-2` is not a positive integer (expected collect(expr, N) with N > 0)"
        );
        assert_eq!(
            err("collect(value.x, 'a,b')"),
            "`collect` bound `'a,b'` is not a positive integer (expected collect(expr, N) with N > 0)"
        );
        assert_eq!(
            err("percentile(value.x)"),
            "`percentile` needs a quantile (expected percentile(expr, q) with q a number in [0, 1])"
        );
        assert_eq!(
            err("percentile(value.x, 1.5)"),
            "`percentile` quantile `1.5` is not a number in [0, 1] (expected percentile(expr, q) with q a number in [0, 1])"
        );
        assert_eq!(
            err("percentile(value.x, -0.1)"),
            "`percentile` quantile `-0.1` is not a number in [0, 1] (expected percentile(expr, q) with q a number in [0, 1])"
        );
        assert_eq!(
            err("percentile(value.x, NaN)"),
            "`percentile` quantile `NaN` is not a number in [0, 1] (expected percentile(expr, q) with q a number in [0, 1])"
        );
        assert_eq!(
            err("first(value.a, value.b)"),
            "`first` takes one argument (expected first(expr))"
        );
    }

    #[test]
    fn commas_inside_nested_expressions_and_strings_stay_in_the_argument() {
        let env = CelEnv::new();
        let source = |call: &str| {
            let a = parse_aggregate(&env, "x", call).unwrap();
            (a.arg.unwrap().source().to_owned(), a.bound, a.q)
        };
        assert_eq!(
            source(r#"first(value.a + "x,y")"#),
            (r#"value.a + "x,y""#.into(), None, None)
        );
        assert_eq!(
            source("collect(size([1,2]), 3)"),
            ("size([1,2])".into(), Some(3), None)
        );
        assert_eq!(
            source("collect({'a': 1, 'b': value.b}, 2)"),
            ("{'a': 1, 'b': value.b}".into(), Some(2), None)
        );
        assert_eq!(
            source(r#"last('it\'s, "ok"' + value.s)"#),
            (r#"'it\'s, "ok"' + value.s"#.into(), None, None)
        );
        assert_eq!(
            source(r#"count_distinct("""a,"b",c""" + r'x\' + ',' + value.s)"#),
            (
                r#""""a,"b",c""" + r'x\' + ',' + value.s"#.into(),
                None,
                None
            )
        );
        assert_eq!(
            source("percentile(value.x > 0 ? [value.x, 1][0] : {'a': 0, 'b': 1}['a'], 0.5)"),
            (
                "value.x > 0 ? [value.x, 1][0] : {'a': 0, 'b': 1}['a']".into(),
                None,
                Some(0.5)
            )
        );
    }

    #[test]
    fn wrong_argument_type_is_a_record_error() {
        let env = CelEnv::new();
        let a = parse_aggregate(&env, "s", "sum(value.x)").unwrap();
        let root = env.root();
        let e = a
            .arg_value(&root, &Record::new(json!(null), json!({"x": "abc"})))
            .unwrap_err();
        assert_eq!(e.message, "gave String(\"abc\") (expected a number)");
        assert_eq!(
            a.arg_value(&root, &Record::new(json!(null), json!({})))
                .unwrap(),
            AggValue::Null
        );
        let p = parse_aggregate(&env, "p", "percentile(value.x, 0.5)").unwrap();
        let e = p
            .arg_value(&root, &Record::new(json!(null), json!({"x": "abc"})))
            .unwrap_err();
        assert_eq!(e.message, "gave String(\"abc\") (expected a finite number)");
    }

    #[test]
    fn any_json_argument_for_first_last_collect_count_distinct() {
        let env = CelEnv::new();
        let root = env.root();
        let rec = Record::new(
            json!(null),
            json!({"tags": ["a", 1], "m": {"k": true}, "n": null, "b": false}),
        );
        let val = |call: &str| {
            parse_aggregate(&env, "x", call)
                .unwrap()
                .arg_value(&root, &rec)
        };
        assert_eq!(
            val("first(value.tags)").unwrap(),
            AggValue::Json(json!(["a", 1]))
        );
        assert_eq!(
            val("collect(value.m, 2)").unwrap(),
            AggValue::Json(json!({"k": true}))
        );
        assert_eq!(val("last(value.b)").unwrap(), AggValue::Json(json!(false)));
        assert_eq!(val("count_distinct(value.n)").unwrap(), AggValue::Null);
        assert_eq!(val("first(value.missing)").unwrap(), AggValue::Null);
        assert_eq!(
            val("first(b'xy')").unwrap_err().message,
            "a CEL bytes has no JSON form"
        );
    }
}
