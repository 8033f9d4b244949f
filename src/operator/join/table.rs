//! [`TableJoin`]: the stream–table `join` stage of DESIGN.md §7, a pure
//! function of a stream record and a [`VersionedTable`] (Flink's event-time
//! temporal join for `time: event`, a lookup of the newest value for
//! `time: latest`); and [`table_key`]/[`table_value`], which turn a table
//! record into the key and value of a version.

use super::versions::{Lookup, VersionedTable};
use crate::expr::{CelExpr, ExprError};
use crate::record::Record;
use cel::Context;
use serde_json::Value;
use std::sync::Arc;

/// `type:` of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    /// An unmatched record is filtered by the stage.
    Inner,
    /// An unmatched record goes on with `null` under `into`.
    Left,
}

/// `time:` of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinTime {
    /// The version valid at the record's event time (T2).
    Event,
    /// The table's newest value.
    Latest,
}

/// Why a stream record could not be joined: a record error (DLQ).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JoinError {
    /// The `on` expression failed (other than by a missing field, which is
    /// a null key).
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// The record is older than the versions the table keeps (T2).
    #[error("table history expired")]
    Expired,
    /// The payload is not a JSON object, so `into` cannot be set.
    #[error("payload is not a JSON object (expected an object to join into `{into}`)")]
    NotAnObject {
        /// The stage's `into` field.
        into: String,
    },
    /// `time: event` and the record's event time could not be read.
    #[error("event time unknown ({0})")]
    NoEventTime(Arc<str>),
}

/// What [`TableJoin::apply`] made of a stream record; each variant is one
/// count of `weir_join_records_total` (see [`JoinOutcome::result`]).
#[derive(Debug, Clone, PartialEq)]
pub enum JoinOutcome {
    /// Matched: the record with the table value under `into`.
    Joined(Record),
    /// `left` and unmatched: the record with `null` under `into`.
    Unmatched(Record),
    /// `inner` and unmatched: filtered by the stage.
    Filtered,
    /// A record error; the record is given back unchanged for the DLQ.
    Error(Record, JoinError),
}

impl JoinOutcome {
    /// The outcome's name for counting: `matched`, `unmatched`, `filtered`
    /// or `error`.
    pub fn result(&self) -> &'static str {
        match self {
            JoinOutcome::Joined(_) => "matched",
            JoinOutcome::Unmatched(_) => "unmatched",
            JoinOutcome::Filtered => "filtered",
            JoinOutcome::Error(..) => "error",
        }
    }
}

/// A compiled stream–table join stage (DESIGN.md §7).
#[derive(Debug, Clone)]
pub struct TableJoin {
    /// The table's name.
    pub table: String,
    /// The lookup key, over the stream record.
    pub on: CelExpr,
    /// `inner` or `left`.
    pub kind: JoinType,
    /// `event` or `latest`.
    pub time: JoinTime,
    /// The top-level payload field the table value goes into.
    pub into: String,
}

impl TableJoin {
    /// Joins `rec` with `table`: looks up the key `on` gives (a null or
    /// missing key never matches, as SQL's `NULL = NULL` is not true) at the
    /// record's event time or the newest, and sets the value (or `null` for
    /// `left`) under `into`. Run it on a record released by
    /// [`super::Hold`] (T4).
    ///
    /// # Errors
    /// [`JoinOutcome::Error`] when `on` fails, the lookup is
    /// [`Lookup::Expired`] (`table history expired`), `time: event` meets a
    /// record without an event time, or a value must be set into a payload
    /// that is not a JSON object.
    pub fn apply(
        &self,
        root: &Context<'static, 'static>,
        rec: Record,
        table: &VersionedTable,
    ) -> JoinOutcome {
        let key = match self.on.eval_json(root, &rec) {
            Ok(k) => k,
            Err(e) if e.is_missing_key() => Value::Null,
            Err(e) => return JoinOutcome::Error(rec, e.into()),
        };
        let found = match (key.is_null(), self.time) {
            (true, _) => Lookup::Absent,
            (false, JoinTime::Latest) => table.latest(&key),
            (false, JoinTime::Event) => match &rec.time_error {
                Some(why) => {
                    let why = Arc::clone(why);
                    return JoinOutcome::Error(rec, JoinError::NoEventTime(why));
                }
                None => table.lookup(&key, rec.event_time),
            },
        };
        match (found, self.kind) {
            (Lookup::Expired, _) => JoinOutcome::Error(rec, JoinError::Expired),
            (Lookup::Absent, JoinType::Inner) => JoinOutcome::Filtered,
            (Lookup::Absent, JoinType::Left) => self.set(rec, Value::Null, JoinOutcome::Unmatched),
            (Lookup::Match(v), _) => self.set(rec, v.clone(), JoinOutcome::Joined),
        }
    }

    /// Sets `value` under `into` of `rec`'s payload and wraps it in `done`.
    fn set(&self, mut rec: Record, value: Value, done: fn(Record) -> JoinOutcome) -> JoinOutcome {
        if rec.raw_bytes.is_none() {
            rec.materialize();
            if let Some(o) = rec.value.as_object_mut() {
                o.insert(self.into.clone(), value);
                return done(rec);
            }
        }
        let into = self.into.clone();
        JoinOutcome::Error(rec, JoinError::NotAnObject { into })
    }
}

/// The key of a table record: its record key when the table has no `key:`
/// expression, else the expression's value over the record. `Ok(None)` for
/// a null key, or a `key:` that reads a missing field: the caller counts the
/// record as a table record error (DLQ, DESIGN.md §7 "Null keys").
///
/// # Errors
/// [`ExprError`] when `key:` fails otherwise.
pub fn table_key(
    spec_key: Option<&CelExpr>,
    root: &Context<'static, 'static>,
    rec: &Record,
) -> Result<Option<Value>, ExprError> {
    let key = match spec_key {
        None => rec.key.clone(),
        Some(e) => match e.eval_json(root, rec) {
            Ok(k) => k,
            Err(e) if e.is_missing_key() => Value::Null,
            Err(e) => return Err(e),
        },
    };
    Ok(Some(key).filter(|k| !k.is_null()))
}

/// The value of a table record's version: its JSON payload, `None` (a
/// tombstone, T3) when the payload is null (a Kafka tombstone).
pub fn table_value(rec: &Record) -> Option<Value> {
    Some(rec.json().clone()).filter(|v| !v.is_null())
}
