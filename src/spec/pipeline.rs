//! The pipeline file's types (DESIGN.md §2), deserialised with serde.
//!
//! Every struct denies unknown fields and none uses `#[serde(flatten)]`,
//! which would break serde_yaml's error locations. Stages are a struct of
//! optional fields (exactly one set, checked in [`crate::plan`]) because
//! serde_yaml 0.9 reads externally tagged enums only from YAML tags.

use super::duration::DurationMs;
use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One pipeline file: a source, stages, sinks, error policy and tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Unique name; the default consumer group is `weir.<name>`.
    pub name: String,
    /// Consumer group id override.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Where records come from.
    pub source: SourceSpec,
    /// Tables materialized from topics, by name, for `join:` stages.
    #[serde(default)]
    pub tables: IndexMap<String, super::tables::TableSpec>,
    /// Stages applied in order to every record.
    #[serde(default)]
    pub stages: Vec<StageSpec>,
    /// Topics the results go to; every sink whose `when` matches gets the record.
    pub sinks: Vec<SinkSpec>,
    /// What happens to bad records.
    #[serde(default)]
    pub errors: ErrorsSpec,
    /// Delivery guarantee.
    #[serde(default)]
    pub delivery: Delivery,
    /// Test cases run by `weir test`.
    #[serde(default)]
    pub tests: Vec<TestCaseSpec>,
}

/// The source: topics, decoding, event time and watermark.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Topic names (fan-in when several).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Regular expression subscription, librdkafka style (`^views\..*`).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Where a new consumer group starts.
    #[serde(default)]
    pub start_from: StartFrom,
    /// Payload format.
    #[serde(default)]
    pub format: Format,
    /// Key format.
    #[serde(default = "Format::text")]
    pub key_format: Format,
    /// Event time; the Kafka record timestamp when absent.
    #[serde(default)]
    pub event_time: Option<EventTimeSpec>,
    /// Watermark generation.
    #[serde(default)]
    pub watermark: WatermarkSpec,
    /// librdkafka consumer overrides for this pipeline.
    #[serde(default)]
    pub consumer: BTreeMap<String, serde_yaml::Value>,
}

/// Where a consumer group with no committed offset starts.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest retained record.
    #[default]
    Earliest,
    /// Only records produced after the group joins.
    Latest,
}

/// Encoding of a key or payload.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// UTF-8 JSON document.
    #[default]
    Json,
    /// UTF-8 text, seen by expressions as a string.
    Text,
    /// Raw bytes, seen by expressions as CEL `bytes`.
    Bytes,
}

impl Format {
    fn text() -> Format {
        Format::Text
    }
}

/// Where a record's event time comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTimeSpec {
    /// JSONPath (RFC 9535) into the payload.
    pub path: String,
    /// Unit of the value found at `path`.
    #[serde(default)]
    pub unit: TimeUnit,
}

/// Unit of an event-time field.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Milliseconds since the Unix epoch.
    #[default]
    Ms,
    /// Seconds since the Unix epoch (fractions allowed).
    S,
    /// Microseconds since the Unix epoch.
    Us,
    /// Nanoseconds since the Unix epoch.
    Ns,
    /// An RFC 3339 timestamp string.
    Rfc3339,
}

/// Watermark settings (DESIGN.md §3).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WatermarkSpec {
    /// How far behind the largest event time seen the watermark trails.
    #[serde(default)]
    pub max_out_of_orderness: DurationMs,
    /// Advance an idle partition's watermark by wall clock after this long.
    #[serde(default)]
    pub idle_timeout: Option<DurationMs>,
}

/// One stage; exactly one field must be set.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// CEL predicate: records for which it is false are filtered out.
    #[serde(default)]
    pub filter: Option<String>,
    /// Reshape the payload.
    #[serde(default)]
    pub transform: Option<TransformSpec>,
    /// CEL expression giving the new record key.
    #[serde(default)]
    pub key_by: Option<String>,
    /// Aggregate records per key and window.
    #[serde(default)]
    pub window: Option<WindowSpec>,
    /// Join with a table or a second stream.
    #[serde(default)]
    pub join: Option<super::tables::JoinSpec>,
}

/// Payload reshaping, applied in the order select, rename, set, drop.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// JSONPaths to keep; everything else is dropped. Empty keeps all.
    #[serde(default)]
    pub select: Vec<String>,
    /// Top-level field renames, old name → new name.
    #[serde(default)]
    pub rename: IndexMap<String, String>,
    /// Top-level fields set from CEL expressions, evaluated in order; each
    /// sees the fields set before it.
    #[serde(default)]
    pub set: IndexMap<String, String>,
    /// JSONPaths to remove.
    #[serde(default)]
    pub drop: Vec<String>,
}

/// A window stage: one window kind plus aggregates.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Tumbling window size.
    #[serde(default)]
    pub tumbling: Option<DurationMs>,
    /// Hopping window size and advance.
    #[serde(default)]
    pub hopping: Option<HoppingSpec>,
    /// Session window gap.
    #[serde(default)]
    pub session: Option<SessionSpec>,
    /// How long after its end a window still accepts records.
    #[serde(default)]
    pub allowed_lateness: DurationMs,
    /// When results are emitted.
    #[serde(default)]
    pub emit: Option<serde_yaml::Value>,
    /// What happens to late records.
    #[serde(default)]
    pub late: LatePolicy,
    /// Output field name → aggregate call, such as `avg(value.dep_delay)`.
    pub aggregate: IndexMap<String, String>,
}

/// Hopping window parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoppingSpec {
    /// Window length.
    pub size: DurationMs,
    /// Distance between window starts; must divide `size`.
    pub advance: DurationMs,
}

/// Session window parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Inactivity gap that ends a session.
    pub gap: DurationMs,
}

/// What to do with records that arrive for closed windows.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicy {
    /// Count and drop.
    #[default]
    Drop,
    /// Count and write to the DLQ topic.
    Dlq,
}

/// One sink topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    /// Topic name.
    pub topic: String,
    /// CEL predicate; the sink gets only records for which it is true.
    #[serde(default)]
    pub when: Option<String>,
    /// CEL expression for the output key; default the record's current key.
    #[serde(default)]
    pub key: Option<String>,
}

/// Bad-record policy.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ErrorsSpec {
    /// skip | dlq | fail.
    #[serde(default)]
    pub policy: ErrorPolicy,
    /// DLQ topic; default `<name>.dlq`.
    #[serde(default)]
    pub dlq_topic: Option<String>,
}

/// What happens to a record that cannot be processed.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// Count, log (rate-limited) and go on.
    #[default]
    Skip,
    /// Write the original record to the DLQ with `weir.*` headers.
    Dlq,
    /// Stop the pipeline, naming the record's coordinates.
    Fail,
}

/// Delivery guarantee.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Outputs may repeat after a crash, never go missing.
    #[default]
    AtLeastOnce,
    /// Transactions (not yet available).
    ExactlyOnce,
}

/// A `weir test` case: input records and the records expected out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCaseSpec {
    /// Shown in reports.
    pub name: String,
    /// Records fed to the source, in order.
    pub input: Vec<TestRecordSpec>,
    /// Records expected at the sinks; values match as subsets.
    pub expect: Vec<TestRecordSpec>,
}

/// A record in a test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRecordSpec {
    /// Input: the source topic the record is read from (default: the first
    /// source topic; required with a `pattern` source). Expectation: the
    /// sink or DLQ topic it must reach (default: any).
    #[serde(default)]
    pub topic: Option<String>,
    /// Record key.
    #[serde(default)]
    pub key: Option<serde_yaml::Value>,
    /// Payload.
    pub value: serde_yaml::Value,
    /// Kafka timestamp in ms. Input: default the previous input record's
    /// (0 for the first). Expectation: must be equal when given.
    #[serde(default)]
    pub timestamp: Option<i64>,
}
