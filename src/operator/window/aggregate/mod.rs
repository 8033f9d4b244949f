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
//!
//! # Where things are
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the table of functions ([`AggKind`]), [`AggSpec`], [`parse_aggregate`] |
//! | `kinds/` | the `Aggregate` trait (`kinds/mod.rs`) and one impl of it per function (`numbers.rs`: count, sum, min, max, avg, percentile; `json.rs`: count_distinct, first, last, collect): its name, call forms, argument type, and how its state starts, adds, checks, merges and gives its result |
//! | `state.rs` | [`AggState`], the serialized running state, dispatching to `kinds/` |
//! | `value.rs` | [`AggValue`] and [`Stamped`], evaluating an argument, comparisons, canonical JSON, conversions, the float serde |
//! | `sketch.rs` | the DDSketch wrapper [`Sketch`] of `percentile` |
//! | `error.rs` | [`AggError`] |
//!
//! Tests sit beside what they test (`tests.rs`, `state/tests.rs`, …), with
//! shared helpers in `test_util.rs`.
//!
//! **Adding an aggregate**: write its `impl Aggregate` in `kinds/` and add
//! its row to the `agg_kinds!` table below. If it needs a new state shape,
//! add an [`AggState`] variant at the end (it is the changelog format) and
//! its arm in `AggState::imp`; the compiler points at that arm.

mod error;
mod kinds;
mod sketch;
mod state;
mod value;

pub use error::AggError;
pub use sketch::{Sketch, PERCENTILE_ACCURACY};
pub use state::AggState;
pub use value::{AggValue, Stamped};

use crate::expr::{CelEnv, CelExpr, ExprError};
use cel::common::ast::{EntryExpr, Expr, LiteralValue, SourceInfo};
use cel::IdedExpr;
use kinds::{Aggregate, Param};

/// Declares [`AggKind`] from one row per function (doc, variant, its
/// `impl Aggregate` in `kinds/`), with [`AggKind::ALL`] and the lookup of
/// each kind's implementation, so that the three cannot drift apart.
/// This table is the one list of aggregate functions.
macro_rules! agg_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident => $imp:expr,)*) => {
        /// The aggregate functions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AggKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl AggKind {
            /// Every function, in the order error messages list them.
            pub const ALL: &'static [AggKind] = &[$(AggKind::$kind),*];

            /// The implementation of this function.
            fn imp(self) -> &'static dyn Aggregate {
                match self {
                    $(AggKind::$kind => &$imp,)*
                }
            }
        }
    };
}

agg_kinds! {
    /// Records (`count()`) or non-null values (`count(expr)`).
    Count => kinds::Count,
    /// Sum of numbers.
    Sum => kinds::Sum,
    /// Smallest number or string.
    Min => kinds::MIN,
    /// Largest number or string.
    Max => kinds::MAX,
    /// Mean of numbers, a float.
    Avg => kinds::Avg,
    /// Exact number of distinct values of any JSON type (`count_distinct(expr)`).
    CountDistinct => kinds::CountDistinct,
    /// Value of the record with the smallest event time (`first(expr)`).
    First => kinds::FIRST,
    /// Value of the record with the largest event time (`last(expr)`).
    Last => kinds::LAST,
    /// List of the values of the `N` earliest records (`collect(expr, N)`).
    Collect => kinds::Collect,
    /// Estimated `q`-quantile of numbers, a float (`percentile(expr, q)`).
    Percentile => kinds::Percentile,
}

impl AggKind {
    /// The function's name in a call, e.g. `"count_distinct"`.
    pub fn name(self) -> &'static str {
        self.imp().name()
    }

    /// The function called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<AggKind> {
        AggKind::ALL.iter().copied().find(|k| k.name() == name)
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

/// Whether `e` is CEL's missing field error (a missing field is null to
/// an aggregate, as in SQL).
pub fn is_missing_key(e: &ExprError) -> bool {
    e.is_missing_key()
}

/// Parses `fn(expr)`, `collect(expr, N)` or `percentile(expr, q)` into an
/// [`AggSpec`] named `name`.
///
/// The call is parsed as a CEL call expression (`cel` crate, no macros
/// expanded); the source text of its first argument is then compiled with
/// [`CelEnv::compile`], so the argument may contain commas, strings and
/// nested calls. `N` is a CEL integer literal (`10`, `0x10`), `q` an integer
/// or double literal (`1`, `0.95`).
///
/// # Errors
/// A message ending in `(expected …)` for an unknown function, a missing or
/// superfluous argument, a missing or invalid bound (a positive integer) or
/// quantile (a number in [0, 1]), or an argument that does not compile.
pub fn parse_aggregate(env: &CelEnv, name: &str, call: &str) -> Result<AggSpec, String> {
    let call = call.trim();
    let Ok((root, info)) = cel::Env::default().parser().parse_with_source_info(call) else {
        return Err(unparsed_call(env, call));
    };
    let Some((func, args)) = global_call(call, &root) else {
        return Err(not_a_call(call));
    };
    let kind = AggKind::from_name(func).ok_or_else(|| unknown(func))?;
    let imp = kind.imp();
    let usage = imp.usage();
    let texts = arg_texts(call, args, &info).ok_or_else(|| not_a_call(call))?;
    let (mut bound, mut q) = (None, None);
    match (imp.param(), args) {
        (_, []) if imp.optional_arg() => {}
        (_, []) => return Err(format!("`{func}` needs an argument (expected {usage})")),
        (Param::None, [_]) => {}
        (Param::None, _) => return Err(format!("`{func}` takes one argument (expected {usage})")),
        (Param::Bound, [_]) => return Err(format!("`{func}` needs a bound (expected {usage})")),
        (Param::Bound, [_, n]) => match literal(n) {
            Some(Number::Int(n)) if n > 0 => bound = usize::try_from(n).ok(),
            _ => {
                return Err(format!(
                    "`{func}` bound `{}` is not a positive integer (expected {usage})",
                    texts[1]
                ))
            }
        },
        (Param::Quantile, [_]) => {
            return Err(format!("`{func}` needs a quantile (expected {usage})"))
        }
        (Param::Quantile, [_, x]) => match literal(x).map(Number::as_f64) {
            Some(x) if (0.0..=1.0).contains(&x) => q = Some(x),
            _ => {
                return Err(format!(
                    "`{func}` quantile `{}` is not a number in [0, 1] (expected {usage})",
                    texts[1]
                ))
            }
        },
        (Param::Bound | Param::Quantile, _) => {
            return Err(format!("`{func}` takes two arguments (expected {usage})"))
        }
    }
    let arg = match texts.first() {
        Some(text) => Some(env.compile(text)?),
        None => None,
    };
    Ok(AggSpec {
        name: name.to_owned(),
        kind,
        arg,
        bound,
        q,
    })
}

fn not_a_call(call: &str) -> String {
    let forms: Vec<_> = AggKind::ALL.iter().map(|k| k.imp().forms()).collect();
    format!(
        "`{call}` is not an aggregate call (expected one of {})",
        forms.join(", ")
    )
}

fn unknown(func: &str) -> String {
    let names: Vec<_> = AggKind::ALL.iter().map(|k| k.name()).collect();
    format!(
        "unknown aggregate `{func}` (expected one of {})",
        names.join(", ")
    )
}

/// The error for a call that is not valid CEL. Its function is the text
/// before the first `(`; a missing first argument (`collect(, 3)`) is
/// reported as such, any other syntax error as [`CelEnv::compile`] reports
/// it for the whole call (so its position is within the call).
fn unparsed_call(env: &CelEnv, call: &str) -> String {
    let (Some(open), true) = (call.find('('), call.ends_with(')')) else {
        return not_a_call(call);
    };
    let func = call[..open].trim();
    let Some(kind) = AggKind::from_name(func) else {
        return unknown(func);
    };
    let inner = call[open + 1..call.len() - 1].trim();
    if inner.is_empty() || inner.starts_with(',') {
        return format!(
            "`{func}` needs an argument (expected {})",
            kind.imp().usage()
        );
    }
    env.compile(call).err().unwrap_or_else(|| not_a_call(call))
}

/// The function name and arguments of `root` when it is a call of a global
/// function written at the start of `call` and ending it (`f(…)`, not
/// `a.f(…)`, `f(…) + 1` or an operator).
fn global_call<'a>(call: &str, root: &'a IdedExpr) -> Option<(&'a str, &'a [IdedExpr])> {
    let Expr::Call(c) = &root.expr else {
        return None;
    };
    let after = call.strip_prefix(c.func_name.as_str())?.trim_start();
    (c.target.is_none() && after.starts_with('(') && call.ends_with(')'))
        .then_some((c.func_name.as_str(), c.args.as_slice()))
}

/// The source text of each argument of the call `call` (checked by
/// [`global_call`]), trimmed. The comma before an argument is the last one
/// before the first token of that argument's subtree; `None` if the offsets
/// do not fit the text.
fn arg_texts<'a>(call: &'a str, args: &[IdedExpr], info: &SourceInfo) -> Option<Vec<&'a str>> {
    let open = call.find('(')?;
    let close = call.len() - 1;
    let mut starts = vec![open];
    for a in args.iter().skip(1) {
        let first = first_offset(a, info)?;
        let from = *starts.last()? + 1;
        let comma = from + call.get(from..first)?.rfind(',')?;
        starts.push(comma);
    }
    starts.push(close);
    if args.is_empty() {
        return Some(Vec::new());
    }
    starts
        .windows(2)
        .map(|w| call.get(w[0] + 1..w[1]).map(str::trim))
        .collect()
}

/// The smallest byte offset of any node of `e` (the parser records the
/// offset of each node's token; closing brackets have none).
fn first_offset(e: &IdedExpr, info: &SourceInfo) -> Option<usize> {
    let own = info.offset_for(e.id).map(|(start, _)| start as usize);
    let children: Vec<&IdedExpr> = match &e.expr {
        Expr::Call(c) => c.target.as_deref().into_iter().chain(&c.args).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => entries(&m.entries),
        Expr::Struct(s) => entries(&s.entries),
        Expr::Select(s) => vec![&s.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    };
    children
        .into_iter()
        .filter_map(|c| first_offset(c, info))
        .chain(own)
        .min()
}

fn entries(entries: &[cel::common::ast::IdedEntryExpr]) -> Vec<&IdedExpr> {
    entries
        .iter()
        .flat_map(|e| match &e.expr {
            EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
            EntryExpr::StructField(f) => vec![&f.value],
        })
        .collect()
}

/// A numeric literal of a call's parameter.
#[derive(Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// `e` as an integer or double literal (`-2` included), else `None`.
fn literal(e: &IdedExpr) -> Option<Number> {
    match &e.expr {
        Expr::Literal(LiteralValue::Int(i)) => Some(Number::Int(*i.inner())),
        Expr::Literal(LiteralValue::Double(d)) => Some(Number::Float(*d.inner())),
        _ => None,
    }
}

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
