//! Turning one record's [`StepResult`] into the Kafka records to produce:
//! sink records, DLQ records for errors and late records, with the
//! `weir.*` DLQ headers of DESIGN.md §3.

use crate::codec::{encode_key, encode_value};
use crate::operator::chain::{Outcome, RecordError, StageRef, StepResult};
use crate::plan::Plan;
use crate::record::Record;
use crate::spec::ErrorPolicy;
use rdkafka::message::{Header, OwnedHeaders};

/// The topic of an [`OutMsg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// The plan's sink at this index.
    Sink(usize),
    /// The DLQ topic.
    Dlq,
    /// The repartition topic: by key, or to this partition (watermark markers).
    Repartition(Option<i32>),
}

/// A record ready to produce.
#[derive(Debug)]
pub struct OutMsg {
    /// Where it goes.
    pub dest: Dest,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Kafka timestamp, ms.
    pub timestamp: i64,
    /// Headers (DLQ only).
    pub headers: Option<OwnedHeaders>,
}

/// The original message, for DLQ copies of the input record.
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Payload bytes.
    pub payload: Option<&'a [u8]>,
    /// Kafka timestamp, ms.
    pub timestamp: i64,
}

/// Counts of one step for metrics, by kind and stage.
#[derive(Debug, Default)]
pub struct StepCounts {
    /// Input record outcome.
    pub outcome: Option<Outcome>,
    /// Where the input record was filtered, found late, or failed.
    pub stage: Option<StageRef>,
    /// Errors of derived records (window results in later stages), by stage.
    pub derived_errors: Vec<StageRef>,
    /// DLQ records produced.
    pub dlq: u64,
    /// Record errors to report with `policy: fail`.
    pub fail: Option<String>,
}

/// A DLQ record carrying `original` (or the derived record) and the headers
/// `weir.error`, `weir.stage`, `weir.source.topic|partition|offset`.
pub fn dlq_record(
    err_text: &str,
    stage: &str,
    rec: &Record,
    original: Option<Original<'_>>,
) -> OutMsg {
    let headers = OwnedHeaders::new_with_capacity(5)
        .insert(Header {
            key: "weir.error",
            value: Some(err_text),
        })
        .insert(Header {
            key: "weir.stage",
            value: Some(stage),
        })
        .insert(Header {
            key: "weir.source.topic",
            value: Some(&*rec.origin.topic),
        })
        .insert(Header {
            key: "weir.source.partition",
            value: Some(&rec.origin.partition.to_string()),
        })
        .insert(Header {
            key: "weir.source.offset",
            value: Some(&rec.origin.offset.to_string()),
        });
    match original {
        Some(o) => OutMsg {
            dest: Dest::Dlq,
            key: o.key.map(<[u8]>::to_vec),
            payload: o.payload.map(<[u8]>::to_vec).unwrap_or_default(),
            timestamp: o.timestamp,
            headers: Some(headers),
        },
        None => OutMsg {
            dest: Dest::Dlq,
            key: encode_key(&rec.key),
            payload: crate::codec::json_bytes(rec),
            timestamp: rec.timestamp,
            headers: Some(headers),
        },
    }
}

/// Builds the messages and counts for one step.
pub fn collect(
    plan: &Plan,
    step: StepResult,
    original: Original<'_>,
    out: &mut Vec<OutMsg>,
) -> StepCounts {
    let mut counts = StepCounts {
        outcome: step.outcome,
        ..Default::default()
    };
    let filtered_by = step.filtered_by;
    for (sink, r) in step.emits {
        out.push(OutMsg {
            dest: Dest::Sink(sink),
            key: encode_key(&r.key),
            payload: encode_value(&r, plan.sink_format),
            timestamp: r.timestamp,
            headers: None,
        });
    }
    if let Some((stage, rec, dlq)) = step.late {
        if dlq {
            let label = stage.label(&plan.stages, &plan.sinks);
            out.push(dlq_record("late", &label, &rec, Some(original)));
            counts.dlq += 1;
        }
        counts.stage = Some(stage);
    }
    for e in step.errors {
        handle_error(plan, e, original, out, &mut counts);
    }
    if step.outcome == Some(Outcome::Filtered) {
        counts.stage = filtered_by;
    }
    counts
}

/// Records a record error: DLQ copy, count, or the `fail` message.
pub fn handle_error(
    plan: &Plan,
    e: RecordError,
    original: Original<'_>,
    out: &mut Vec<OutMsg>,
    counts: &mut StepCounts,
) {
    let label = e.stage.label(&plan.stages, &plan.sinks);
    match plan.error_policy {
        ErrorPolicy::Dlq => {
            out.push(dlq_record(
                &e.message,
                &label,
                &e.record,
                e.input.then_some(original),
            ));
            counts.dlq += 1;
        }
        ErrorPolicy::Fail => {
            counts.fail.get_or_insert_with(|| {
                // A window result has no source coordinates of its own.
                let what = match (e.input, e.record.json().get("window")) {
                    (true, _) => format!(
                        "record {}/{}@{}",
                        e.record.origin.topic, e.record.origin.partition, e.record.origin.offset
                    ),
                    (false, Some(w)) => format!("window result (key {}, window {w})", e.record.key),
                    (false, None) => format!("window result (key {})", e.record.key),
                };
                format!("{what} failed in stage {label}: {}", e.message)
            });
        }
        ErrorPolicy::Skip => {
            // Counted by the caller; logged at debug only: a bad stream would
            // otherwise flood the log (the error counter is the signal).
            tracing::debug!(pipeline = %plan.name, stage = %label, error = %e.message, "record skipped");
        }
    }
    if e.input {
        counts.stage = Some(e.stage);
    } else {
        counts.derived_errors.push(e.stage);
    }
}
