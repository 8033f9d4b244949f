//! `weir test`'s harness: runs the `tests:` cases of a pipeline file with
//! no broker, the way Kafka Streams' `TopologyTestDriver` runs a topology.
//!
//! A case's `input` records are encoded as the source would receive them
//! (key and payload per `key_format` and `format`), fed in order through
//! the very [`Chain`](crate::operator::Chain) and
//! [`output::collect`](crate::runtime::output::collect) the runtime uses,
//! and, at the end of input, every open window is flushed as `weir dev`
//! does. What reaches the sinks and the DLQ is compared with `expect`.
//!
//! - [`cases`] checks and encodes the cases of a loaded file; mistakes are
//!   located like every other mistake in a pipeline file.
//! - [`run()`] runs one case ([`run`](mod@run) module): each input topic is one source
//!   partition, and a repartition (a `key_by` before a window) is one
//!   partition whose watermark is passed on after every record.
//! - [`compare`] matches the outputs with the expectations
//!   ([`matcher`]) and renders a failure as a diff ([`report`]).
//!
//! Only what the pipeline file states is modelled: there is no wall clock,
//! so `source.watermark.idle_timeout` never fires.

pub mod matcher;
pub mod report;
pub mod run;

pub use report::compare;
pub use run::{run, Output, Run};

use crate::codec::encode_key;
use crate::plan::Plan;
use crate::spec::{Format, Loaded, PipelineSpec, SpecError, SpecErrors};
use serde_json::Value;

/// One input record of a case, encoded as the source topic would hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// Source topic it is read from: the record's `topic`, else the first
    /// of `source.topics`. Each topic is one partition (number 0), and a
    /// record's offset is its position among the case's records of that
    /// topic.
    pub topic: String,
    /// Key bytes per `source.key_format`; `None` when the case gives none.
    pub key: Option<Vec<u8>>,
    /// Payload bytes per `source.format`; `None` (a tombstone) for `value: null`.
    pub payload: Option<Vec<u8>>,
    /// Kafka timestamp, ms since the Unix epoch: the record's `timestamp`,
    /// else the previous input record's (0 for the first), so time never
    /// runs backwards by omission.
    pub timestamp: i64,
}

/// One record a case expects at a sink or the DLQ.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// Topic it must reach; `None` for any.
    pub topic: Option<String>,
    /// Key bytes it must have, encoded as weir encodes output keys (the
    /// text of a string, the JSON of anything else); `None` for any key.
    pub key: Option<Vec<u8>>,
    /// Payload it must match as a subset ([`matcher::subset`]).
    pub value: Value,
    /// Kafka timestamp (ms) it must have; `None` for any.
    pub timestamp: Option<i64>,
}

/// A test case, checked and encoded, ready for [`run()`].
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The case's `name`.
    pub name: String,
    /// Records fed to the source, in order.
    pub input: Vec<InputRecord>,
    /// Records expected out, in the order weir produces them.
    pub expect: Vec<Expected>,
}

/// Checks and encodes the `tests:` cases of `loaded`, compiled as `plan`.
///
/// # Errors
/// Every mistake in the cases, located at its field: a case name used
/// twice, a payload or key that the source's format cannot hold (an object
/// for `format: text`), an input `topic` that is not a source topic (or is
/// missing with, or not matching, a `pattern` source), an expected `topic`
/// that is neither a
/// sink nor the DLQ.
pub fn cases(loaded: &Loaded<PipelineSpec>, plan: &Plan) -> Result<Vec<Case>, SpecErrors> {
    let mut errs: Vec<SpecError> = Vec::new();
    let mut out = Vec::new();
    let mut outputs: Vec<&str> = plan.sinks.iter().map(|s| s.topic.as_str()).collect();
    if plan.uses_dlq {
        outputs.push(&plan.dlq_topic);
    }
    // A pattern librdkafka takes but this crate does not is not checked.
    let pattern = plan
        .pattern
        .as_deref()
        .and_then(|p| regex::Regex::new(p).ok());
    for (i, t) in loaded.doc.tests.iter().enumerate() {
        let base = format!("tests[{i}]");
        if let Some(first) = loaded.doc.tests[..i].iter().position(|o| o.name == t.name) {
            errs.push(loaded.error_at(
                &format!("{base}.name"),
                format!(
                    "`{}` is also the name of tests[{first}] (expected unique case names)",
                    t.name
                ),
            ));
        }
        let mut case = Case {
            name: t.name.clone(),
            input: Vec::with_capacity(t.input.len()),
            expect: Vec::with_capacity(t.expect.len()),
        };
        let mut timestamp = 0;
        for (j, r) in t.input.iter().enumerate() {
            let at = format!("{base}.input[{j}]");
            let mut err = |field: &str, msg: String| {
                errs.push(loaded.error_at(&format!("{at}.{field}"), msg));
            };
            // A table's record is encoded in the table's formats.
            let table = r
                .topic
                .as_ref()
                .and_then(|t| plan.tables.iter().find(|d| d.topic == *t));
            // A stream-stream join's right record, in that stream's formats.
            let right = r.topic.as_ref().and_then(|t| plan.stream_join_of(t));
            let decoder = table
                .map(|t| &t.decoder)
                .or(right.map(|j| &j.decoder))
                .unwrap_or(&plan.decoder);
            let topic = match (&r.topic, plan.topics.first()) {
                (Some(t), _) if table.is_some() || right.is_some() || plan.topics.contains(t) => {
                    t.clone()
                }
                (Some(t), _) if plan.topics.is_empty() => {
                    if !pattern.as_ref().is_none_or(|p| p.is_match(t)) {
                        err(
                            "topic",
                            format!(
                                "`{t}` does not match the source pattern (expected a topic matching {})",
                                plan.pattern.as_deref().unwrap_or_default()
                            ),
                        );
                    }
                    t.clone()
                }
                (Some(t), _) => {
                    err(
                        "topic",
                        format!(
                            "`{t}` is not a source {}topic (expected one of {})",
                            if plan.tables.is_empty() && plan.stream_joins.is_empty() {
                                ""
                            } else {
                                "or join "
                            },
                            plan.topics
                                .iter()
                                .chain(plan.tables.iter().map(|t| &t.topic))
                                .chain(plan.stream_joins.iter().flat_map(|j| &j.topics))
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    String::new()
                }
                (None, Some(first)) => first.clone(),
                (None, None) => {
                    err("topic", "missing: the source has a `pattern` (expected the topic this record is read from)".into());
                    String::new()
                }
            };
            let key = match &r.key {
                None => None,
                Some(k) => match yaml_to_json(k)
                    .and_then(|k| encode_input(decoder.key_format, &k, "key"))
                {
                    Ok(k) => k,
                    Err(m) => {
                        err("key", m);
                        None
                    }
                },
            };
            let payload = match yaml_to_json(&r.value)
                .and_then(|v| encode_input(decoder.format, &v, "format"))
            {
                Ok(p) => p,
                Err(m) => {
                    err("value", m);
                    None
                }
            };
            timestamp = r.timestamp.unwrap_or(timestamp);
            case.input.push(InputRecord {
                topic,
                key,
                payload,
                timestamp,
            });
        }
        for (j, e) in t.expect.iter().enumerate() {
            let at = format!("{base}.expect[{j}]");
            let mut err = |field: &str, msg: String| {
                errs.push(loaded.error_at(&format!("{at}.{field}"), msg));
            };
            if let Some(t) = e.topic.as_deref().filter(|t| !outputs.contains(t)) {
                err(
                    "topic",
                    format!(
                        "`{t}` is not an output of this pipeline (expected one of {})",
                        outputs.join(", ")
                    ),
                );
            }
            let key = match e.key.as_ref().map(yaml_to_json) {
                None => None,
                Some(Ok(k)) => encode_key(&k),
                Some(Err(m)) => {
                    err("key", m);
                    None
                }
            };
            let value = yaml_to_json(&e.value).unwrap_or_else(|m| {
                err("value", m);
                Value::Null
            });
            case.expect.push(Expected {
                topic: e.topic.clone(),
                key,
                value,
                timestamp: e.timestamp,
            });
        }
        out.push(case);
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(SpecErrors(errs))
    }
}

/// A YAML value as JSON; `Err` for what JSON cannot hold (a non-scalar
/// mapping key).
fn yaml_to_json(v: &serde_yaml::Value) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("{e} (expected a value JSON can hold)"))
}

/// Encodes an input key (`what = "key"`, per `key_format`) or payload
/// (`what = "format"`, per `format`). JSON is written as JSON; `text` and
/// `bytes` take a string, or the text of a number or boolean. `null` is no
/// key, or no payload (a tombstone).
fn encode_input(format: Format, v: &Value, what: &str) -> Result<Option<Vec<u8>>, String> {
    let field = if what == "key" {
        "key_format"
    } else {
        "format"
    };
    Ok(Some(match (format, v) {
        (_, Value::Null) => return Ok(None),
        (Format::Json, v) => v.to_string().into_bytes(),
        (_, Value::String(s)) => s.as_bytes().to_vec(),
        (_, Value::Number(_) | Value::Bool(_)) => v.to_string().into_bytes(),
        (_, Value::Array(_) | Value::Object(_)) => {
            let f = if format == Format::Text {
                "text"
            } else {
                "bytes"
            };
            return Err(format!(
                "`{field}: {f}` reads strings, this is a JSON document (expected a string, or `{field}: json`)"
            ));
        }
    }))
}

#[cfg(test)]
mod join_tests;
#[cfg(test)]
mod stream_join_tests;
#[cfg(test)]
mod tests;
