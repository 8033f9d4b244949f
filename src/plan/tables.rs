//! Compiling `tables:` and `join:` stages (DESIGN.md §7): each table's
//! decoding, key and watermark; each join's table, lookup key, type and
//! target field, with the checks `weir lint` makes at `file:line:col`
//! (an unknown table, a join type or field that does not fit its kind, a
//! stream-stream join without `within`). Errors go to `err` with the field
//! path, as in [`super`].

use super::stages::cel;
use crate::codec::{Decoder, EventTime};
use crate::expr::{CelEnv, CelExpr, JsonPath};
use crate::operator::join::{IntervalJoinDef, IntervalType, JoinTime, JoinType, TableJoin};
use crate::spec::{JoinKind, JoinSpec, TableSpec};
use indexmap::IndexMap;
use std::sync::Arc;

/// A compiled table (DESIGN.md §7).
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Its name under `tables:`.
    pub name: String,
    /// The topic it is read from (its own changelog).
    pub topic: String,
    /// Decoding of its records; the event time is the version time.
    pub decoder: Decoder,
    /// The key of a table record; the record key when `None`.
    pub key: Option<CelExpr>,
    /// Every instance reads every partition.
    pub global: bool,
    /// Bound of the table's watermark, ms.
    pub max_out_of_orderness: i64,
    /// After this many ms idle at its end, the table holds no record back.
    pub idle_timeout: Option<i64>,
    /// Versions kept behind the stream's watermark, ms.
    pub history: i64,
}

/// A compiled stream-stream join: its right stream and the join itself.
#[derive(Debug, Clone)]
pub struct StreamJoinDef {
    /// Index of the join stage.
    pub stage: usize,
    /// The right stream's topics.
    pub topics: Vec<String>,
    /// Decoding of the right stream's records (their event time).
    pub decoder: Decoder,
    /// The join.
    pub join: Arc<IntervalJoinDef>,
}

/// A compiled `join:` stage.
#[derive(Debug)]
pub(super) enum CompiledJoin {
    /// Against a table.
    Table(TableJoin),
    /// Against a second stream: its topics, decoding and the join.
    Stream(Box<(Vec<String>, Decoder, IntervalJoinDef)>),
}

/// Compiles every table of `tables`, reporting errors at `tables.<name>…`.
pub(super) fn tables(
    env: &CelEnv,
    tables: &IndexMap<String, TableSpec>,
    err: &mut dyn FnMut(&str, String),
) -> Vec<TableDef> {
    let mut out = Vec::new();
    for (name, t) in tables {
        let base = format!("tables.{name}");
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            err(
                &base,
                format!(
                    "`{name}` is not a table name (expected a name without spaces, e.g. planes)"
                ),
            );
        }
        if t.topic.trim().is_empty() {
            err(
                &format!("{base}.topic"),
                "empty topic name (expected a topic)".into(),
            );
        }
        if t.watermark.idle_timeout.is_some_and(|d| d.0 == 0) {
            err(
                &format!("{base}.watermark.idle_timeout"),
                "must be longer than 0 (expected e.g. 10s)".into(),
            );
        }
        let event_time = match &t.event_time {
            None => EventTime::KafkaTimestamp,
            Some(et) => match JsonPath::compile(&et.path) {
                Ok(p) => EventTime::Path(p, et.unit),
                Err(m) => {
                    err(&format!("{base}.event_time.path"), m);
                    EventTime::KafkaTimestamp
                }
            },
        };
        let key = t
            .key
            .as_ref()
            .and_then(|k| cel(env, format!("{base}.key"), k, err));
        out.push(TableDef {
            name: name.clone(),
            topic: t.topic.clone(),
            decoder: Decoder {
                format: t.format,
                key_format: t.key_format,
                event_time,
            },
            key,
            global: t.global,
            max_out_of_orderness: t.watermark.max_out_of_orderness.0 as i64,
            idle_timeout: t.watermark.idle_timeout.map(|d| d.0 as i64),
            history: t.history.map_or(0, |d| d.0 as i64),
        });
    }
    out
}

/// Checks the `join` stage `j` at `base` (`stages[i].join`) against the
/// pipeline's `tables` and compiles it; `None` after an error. The right
/// stream of a stream-stream join takes `right_out_of_orderness` (the
/// source's bound, ms) for its watermark.
pub(super) fn join(
    env: &CelEnv,
    base: &str,
    j: &JoinSpec,
    tables: &IndexMap<String, TableSpec>,
    right_out_of_orderness: i64,
    err: &mut dyn FnMut(&str, String),
) -> Option<CompiledJoin> {
    let on = cel(env, format!("{base}.on"), &j.on, err);
    if j.into.trim().is_empty() || !crate::record::plain_name(&j.into) {
        err(
            &format!("{base}.into"),
            format!(
                "`{}` is not a field name (expected a top-level field without quotes or backslashes, e.g. plane)",
                j.into
            ),
        );
    }
    match (&j.table, &j.stream) {
        (None, None) => {
            err(
                base,
                "no table or stream to join (expected `table: <name under tables:>` or `stream: {topics: […], key: …}`)".into(),
            );
            None
        }
        (Some(_), Some(_)) => {
            err(
                base,
                "both `table` and `stream` are set (expected one of them)".into(),
            );
            None
        }
        (None, Some(st)) => {
            if j.within.is_none() {
                err(
                    base,
                    "a stream-stream join needs `within` (expected the time bound, e.g. `within: 15m`)".into(),
                );
            }
            if j.time == crate::spec::JoinTime::Latest {
                err(
                    &format!("{base}.time"),
                    "`time` chooses a table version (expected it only with `table:`)".into(),
                );
            }
            if st.topics.is_empty() || st.topics.iter().any(|t| t.trim().is_empty()) {
                err(
                    &format!("{base}.stream.topics"),
                    "no topic (expected at least one topic name, e.g. [payments])".into(),
                );
            }
            let event_time = match &st.event_time {
                None => EventTime::KafkaTimestamp,
                Some(et) => match JsonPath::compile(&et.path) {
                    Ok(p) => EventTime::Path(p, et.unit),
                    Err(m) => {
                        err(&format!("{base}.stream.event_time.path"), m);
                        EventTime::KafkaTimestamp
                    }
                },
            };
            let right_key = cel(env, format!("{base}.stream.key"), &st.key, err);
            let kind = match j.kind {
                JoinKind::Inner => IntervalType::Inner,
                JoinKind::Left => IntervalType::Left,
                JoinKind::Outer => IntervalType::Outer,
            };
            Some(CompiledJoin::Stream(Box::new((
                st.topics.clone(),
                Decoder {
                    format: st.format,
                    key_format: crate::spec::Format::Text,
                    event_time,
                },
                IntervalJoinDef {
                    on: on?,
                    right_key: right_key?,
                    within: j.within?.0 as i64,
                    allowed_lateness: j.allowed_lateness.map_or(0, |d| d.0 as i64),
                    right_out_of_orderness,
                    kind,
                    into: j.into.clone(),
                },
            ))))
        }
        (Some(name), None) => {
            if !tables.contains_key(name) {
                let known: Vec<&str> = tables.keys().map(String::as_str).collect();
                err(
                    &format!("{base}.table"),
                    if known.is_empty() {
                        format!("unknown table `{name}` (expected a table declared under `tables:`; there is none)")
                    } else {
                        format!(
                            "unknown table `{name}` (expected one of the tables declared under `tables:`: {})",
                            known.join(", ")
                        )
                    },
                );
            }
            if j.within.is_some() {
                err(
                    &format!("{base}.within"),
                    "`within` bounds a stream-stream join (expected it only with `stream:`)".into(),
                );
            }
            if j.allowed_lateness.is_some() {
                err(
                    &format!("{base}.allowed_lateness"),
                    "`allowed_lateness` bounds a stream-stream join (expected it only with `stream:`)".into(),
                );
            }
            let kind = match j.kind {
                JoinKind::Inner => JoinType::Inner,
                JoinKind::Left => JoinType::Left,
                JoinKind::Outer => {
                    err(
                        &format!("{base}.type"),
                        "`outer` joins two streams (expected inner or left for a table join)"
                            .into(),
                    );
                    return None;
                }
            };
            let time = match j.time {
                crate::spec::JoinTime::Event => JoinTime::Event,
                crate::spec::JoinTime::Latest => JoinTime::Latest,
            };
            Some(CompiledJoin::Table(TableJoin {
                table: name.clone(),
                on: on?,
                kind,
                time,
                into: j.into.clone(),
            }))
        }
    }
}
