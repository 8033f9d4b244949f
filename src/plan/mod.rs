//! Compiles a pipeline spec into an executable plan: CEL programs, JSONPaths,
//! window definitions, sinks and the consumer group. Every check that can be
//! made without a broker happens here, and every error is collected (not
//! just the first) with its location.

use crate::codec::{Decoder, EventTime};
use crate::expr::{CelEnv, JsonPath};
use crate::operator::filter::Filter;
use crate::operator::key_by::KeyBy;
use crate::operator::{Sink, Stage};
use crate::spec::{
    Delivery, ErrorPolicy, Loaded, PipelineSpec, SpecError, SpecErrors, StageSpec, StartFrom,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An executable pipeline.
#[derive(Clone)]
pub struct Plan {
    /// Pipeline name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Consumer group id.
    pub group_id: String,
    /// Source topics (empty when `pattern` is used).
    pub topics: Vec<String>,
    /// Regex subscription, already prefixed with `^` as librdkafka requires.
    pub pattern: Option<String>,
    /// `pattern`, compiled (checked at load).
    pattern_re: Option<regex::Regex>,
    /// Where a new group starts.
    pub start_from: StartFrom,
    /// Message decoding.
    pub decoder: Decoder,
    /// Watermark bound, ms.
    pub max_out_of_orderness: i64,
    /// An idle partition's watermark advances by wall clock after this many ms.
    pub idle_timeout: Option<i64>,
    /// librdkafka consumer overrides.
    pub consumer: BTreeMap<String, String>,
    /// Stages in order.
    pub stages: Arc<Vec<Stage>>,
    /// Sinks.
    pub sinks: Arc<Vec<Sink>>,
    /// Output format of sink payloads (the source's format).
    pub sink_format: crate::spec::Format,
    /// Bad-record policy.
    pub error_policy: ErrorPolicy,
    /// DLQ topic.
    pub dlq_topic: String,
    /// Whether any stage may write to the DLQ.
    pub uses_dlq: bool,
    /// Delivery guarantee.
    pub delivery: Delivery,
    /// Nothing reads the payload (no stages, no sink `when` or `key`): records
    /// are forwarded as they are, never decoded.
    pub raw_passthrough: bool,
    /// Compacted topic holding per-partition checkpoints, `<group>.checkpoint`.
    pub checkpoint_topic: String,
    /// Where a `key_by` followed by a window splits the pipeline.
    pub repartition: Option<Repartition>,
    /// The CEL environment the plan was compiled in.
    pub env: CelEnv,
    /// The spec, for `weir test`.
    pub spec: PipelineSpec,
    /// The tables of `tables:`, compiled (DESIGN.md §7).
    pub tables: Vec<TableDef>,
    /// The stream-stream join stages, with their right streams.
    pub stream_joins: Vec<StreamJoinDef>,
}

impl Plan {
    /// The changelog topic of every window stage,
    /// `<group>.<stage>.changelog`; they need as many partitions as
    /// the input.
    pub fn changelog_topics(&self) -> Vec<String> {
        self.changelogs().into_iter().map(|(_, t)| t).collect()
    }

    /// `(stage index, changelog topic)` of every window stage.
    pub fn changelogs(&self) -> Vec<(usize, String)> {
        self.stores()
            .into_iter()
            .map(|s| (s.stage, s.changelog(&self.group_id)))
            .collect()
    }

    /// The stores the stages declare, in stage order (a window stage: one
    /// store named after its index).
    pub fn stores(&self) -> Vec<crate::state::store::StoreSpec> {
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Stage::Window(_)))
            .map(|(i, _)| crate::state::store::StoreSpec::window(i))
            .collect()
    }

    /// Whether `topic` is a source of this pipeline: one of `source.topics`,
    /// or, for a `source.pattern`, a topic the pattern matches that is not
    /// internal: Kafka's (`__…`), weir's (`weir.…`) or this group's own
    /// (`<group>.…`). Used for the upstream partitions of a repartition
    /// (whose watermark markers a downstream partition waits for) and by
    /// `weir reset-offsets`; a topic created after the pipeline started is
    /// not among the upstream partitions until it restarts.
    pub fn is_source_topic(&self, topic: &str) -> bool {
        if self.topics.iter().any(|t| t == topic) {
            return true;
        }
        let Some(re) = &self.pattern_re else {
            return false;
        };
        let internal = topic.starts_with("__")
            || topic.starts_with("weir.")
            || topic
                .strip_prefix(self.group_id.as_str())
                .is_some_and(|rest| rest.starts_with('.'));
        !internal && re.is_match(topic)
    }

    /// Whether a stage joins a table (DESIGN.md §7).
    pub fn has_table_joins(&self) -> bool {
        self.stages.iter().any(|s| matches!(s, Stage::Join(_)))
    }

    /// Whether a stage joins a second stream (DESIGN.md §7).
    pub fn has_stream_joins(&self) -> bool {
        !self.stream_joins.is_empty()
    }

    /// The stream-stream join whose right stream reads `topic`.
    pub fn stream_join_of(&self, topic: &str) -> Option<&StreamJoinDef> {
        self.stream_joins
            .iter()
            .find(|j| j.topics.iter().any(|t| t == topic))
    }

    /// The repartition topic, when a `key_by` precedes a window.
    pub fn repartition_topic(&self) -> Option<&str> {
        self.repartition.as_ref().map(|r| r.topic.as_str())
    }

    /// Every topic this pipeline writes to: sinks, DLQ (when used), checkpoint.
    pub fn output_topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.sinks.iter().map(|s| s.topic.clone()).collect();
        if self.uses_dlq {
            t.push(self.dlq_topic.clone());
        }
        t.push(self.checkpoint_topic.clone());
        t.dedup();
        t
    }
}

/// Compiles a loaded pipeline spec.
///
/// # Errors
/// Every problem found, each located in the file.
pub fn compile(loaded: &Loaded<PipelineSpec>, env: &CelEnv) -> Result<Plan, SpecErrors> {
    let spec = &loaded.doc;
    let mut errs = Vec::new();
    let mut err = |path: &str, msg: String| errs.push(loaded.error_at(path, msg));

    if spec.name.trim().is_empty() || spec.name.contains(char::is_whitespace) {
        err(
            "name",
            "must be a non-empty name without spaces (expected e.g. flight-delays)".into(),
        );
    }
    let src = &spec.source;
    match (src.topics.is_empty(), &src.pattern) {
        (true, None) => err(
            "source",
            "no topics (expected `topics: [name, …]` or `pattern: regex`)".into(),
        ),
        (false, Some(_)) => err(
            "source.pattern",
            "both `topics` and `pattern` are set (expected one of them)".into(),
        ),
        (true, Some(p)) => {
            if let Err(e) = regex::Regex::new(&anchored(p)) {
                err(
                    "source.pattern",
                    format!(
                        "not a regular expression: {} (expected e.g. \"^views\\\\..*\")",
                        e.to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim_start_matches("error: ")
                    ),
                );
            }
        }
        _ => {}
    }
    if src.watermark.idle_timeout.is_some_and(|d| d.0 == 0) {
        err(
            "source.watermark.idle_timeout",
            "must be longer than 0 (expected e.g. 30s)".into(),
        );
    }
    let event_time = match &src.event_time {
        None => EventTime::KafkaTimestamp,
        Some(et) => match JsonPath::compile(&et.path) {
            Ok(p) => EventTime::Path(p, et.unit),
            Err(m) => {
                err("source.event_time.path", m);
                EventTime::KafkaTimestamp
            }
        },
    };

    let table_defs = tables::tables(env, &spec.tables, &mut err);
    let mut stream_joins: Vec<StreamJoinDef> = Vec::new();
    let mut stages = Vec::new();
    let mut uses_dlq = spec.errors.policy == ErrorPolicy::Dlq;
    for (i, st) in spec.stages.iter().enumerate() {
        let base = format!("stages[{i}]");
        let set = count_set(st);
        if set != 1 {
            err(
                &base,
                format!(
                    "{} (expected exactly one of filter, transform, key_by, window, join)",
                    if set == 0 {
                        "empty stage"
                    } else {
                        "more than one stage kind in one entry"
                    }
                ),
            );
            continue;
        }
        if let Some(f) = &st.filter {
            if let Some(p) = stages::cel(env, format!("{base}.filter"), f, &mut err) {
                stages.push(Stage::Filter(Filter { predicate: p }));
            }
        } else if let Some(k) = &st.key_by {
            if let Some(p) = stages::cel(env, format!("{base}.key_by"), k, &mut err) {
                stages.push(Stage::KeyBy(KeyBy { key: p }));
            }
        } else if let Some(t) = &st.transform {
            stages.push(Stage::Transform(stages::transform(env, &base, t, &mut err)));
        } else if let Some(w) = &st.window {
            if w.late == crate::spec::LatePolicy::Dlq {
                uses_dlq = true;
            }
            if let Some(def) = stages::window(env, &format!("{base}.window"), w, &mut err) {
                stages.push(Stage::Window(Arc::new(def)));
            }
        } else if let Some(j) = &st.join {
            let bound = src.watermark.max_out_of_orderness.0 as i64;
            match tables::join(
                env,
                &format!("{base}.join"),
                j,
                &spec.tables,
                bound,
                &mut err,
            ) {
                Some(tables::CompiledJoin::Table(tj)) => stages.push(Stage::Join(Arc::new(tj))),
                Some(tables::CompiledJoin::Stream(b)) => {
                    let (topics, decoder, join) = *b;
                    let join = Arc::new(join);
                    stream_joins.push(StreamJoinDef {
                        stage: stages.len(),
                        topics,
                        decoder,
                        join: Arc::clone(&join),
                    });
                    stages.push(Stage::StreamJoin(join));
                }
                None => {}
            }
        }
    }

    if spec.sinks.is_empty() {
        err(
            "sinks",
            "no sinks (expected at least one `- topic: name`)".into(),
        );
    }
    let mut sinks = Vec::new();
    for (i, s) in spec.sinks.iter().enumerate() {
        let base = format!("sinks[{i}]");
        if s.topic.trim().is_empty() {
            err(
                &format!("{base}.topic"),
                "empty topic name (expected a topic)".into(),
            );
        }
        let when = s
            .when
            .as_ref()
            .and_then(|w| stages::cel(env, format!("{base}.when"), w, &mut err));
        let key = s
            .key
            .as_ref()
            .and_then(|k| stages::cel(env, format!("{base}.key"), k, &mut err));
        sinks.push(Sink {
            topic: s.topic.clone(),
            when,
            key,
        });
    }
    if spec.errors.dlq_topic.is_some() && spec.errors.policy != ErrorPolicy::Dlq && !uses_dlq {
        err("errors.dlq_topic", "set but nothing writes to the DLQ (expected `policy: dlq` or a window with `late: dlq`)".into());
    }
    let mut consumer = BTreeMap::new();
    for (k, v) in &src.consumer {
        if matches!(
            k.as_str(),
            "group.id" | "enable.auto.commit" | "enable.auto.offset.store" | "bootstrap.servers"
        ) {
            err(
                &format!("source.consumer.{k}"),
                format!("`{k}` is managed by weir (expected another librdkafka property)"),
            );
        }
        consumer.insert(k.clone(), crate::spec::daemon::property_value(v));
    }

    // Internal topics are scoped by the group id (DESIGN.md §3), as Kafka
    // Streams scopes them by `application.id`.
    let group_id = spec
        .group_id
        .clone()
        .unwrap_or_else(|| format!("weir.{}", spec.name));
    let repartition = repartition::find(&stages, &group_id, src.format, &mut err);
    // A window after a stream-stream join would close on the source's
    // watermark, before the join emits the unmatched records it waits for.
    if let Some(j) = stages
        .iter()
        .position(|s| matches!(s, Stage::StreamJoin(_)))
    {
        if let Some(w) = stages[j..]
            .iter()
            .position(|s| matches!(s, Stage::Window(_)))
        {
            err(
                &format!("stages[{}]", j + w),
                format!("a window after the stream-stream join at stages[{j}] cannot run yet: it would close before the join emits what it waits for (expected the window before the join, or in a second pipeline reading this one's sink)"),
            );
        }
    }
    if !errs.is_empty() {
        return Err(SpecErrors(errs));
    }
    let name = spec.name.clone();
    let raw_passthrough =
        stages.is_empty() && sinks.iter().all(|s| s.when.is_none() && s.key.is_none());
    Ok(Plan {
        checkpoint_topic: format!("{group_id}.checkpoint"),
        group_id,
        topics: src.topics.clone(),
        pattern: src.pattern.as_deref().map(anchored),
        // Checked above: an invalid pattern never reaches a plan.
        pattern_re: src
            .pattern
            .as_deref()
            .and_then(|p| regex::Regex::new(&anchored(p)).ok()),
        start_from: src.start_from,
        decoder: Decoder {
            format: src.format,
            key_format: src.key_format,
            event_time,
        },
        max_out_of_orderness: src.watermark.max_out_of_orderness.0 as i64,
        idle_timeout: src.watermark.idle_timeout.map(|d| d.0 as i64),
        consumer,
        stages: Arc::new(stages),
        sinks: Arc::new(sinks),
        sink_format: src.format,
        error_policy: spec.errors.policy,
        dlq_topic: spec
            .errors
            .dlq_topic
            .clone()
            .unwrap_or_else(|| format!("{name}.dlq")),
        uses_dlq,
        delivery: spec.delivery,
        raw_passthrough,
        repartition,
        env: env.clone(),
        spec: spec.clone(),
        tables: table_defs,
        stream_joins,
        file: loaded.file.clone(),
        name,
    })
}

/// `pattern` prefixed with `^`, as librdkafka takes a regex subscription.
fn anchored(pattern: &str) -> String {
    if pattern.starts_with('^') {
        pattern.to_owned()
    } else {
        format!("^{pattern}")
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("name", &self.name)
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

fn count_set(st: &StageSpec) -> usize {
    [
        st.filter.is_some(),
        st.transform.is_some(),
        st.key_by.is_some(),
        st.window.is_some(),
        st.join.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

/// Loads and compiles every pipeline file under `paths`, collecting the
/// errors of all files; pipeline names must be unique.
///
/// # Errors
/// Every problem found in any file.
pub fn load_all(paths: &[PathBuf], env: &CelEnv) -> Result<Vec<Plan>, SpecErrors> {
    let files = crate::spec::expand_paths(paths).map_err(SpecErrors::from)?;
    let mut plans: Vec<Plan> = Vec::new();
    let mut errs: Vec<SpecError> = Vec::new();
    for f in files {
        match crate::spec::load_file::<PipelineSpec>(&f) {
            Err(e) => errs.push(e),
            Ok(loaded) => match compile(&loaded, env) {
                Err(e) => errs.extend(e.0),
                Ok(p) => {
                    if let Some(other) = plans.iter().find(|o| o.name == p.name) {
                        errs.push(loaded.error_at(
                            "name",
                            format!(
                                "pipeline `{}` is also defined in {} (expected unique names)",
                                p.name,
                                other.file.display()
                            ),
                        ));
                    } else {
                        plans.push(p);
                    }
                }
            },
        }
    }
    if errs.is_empty() {
        Ok(plans)
    } else {
        Err(SpecErrors(errs))
    }
}

mod repartition;
mod stages;
mod tables;
pub use repartition::Repartition;
pub use tables::{StreamJoinDef, TableDef};
pub mod topology;

#[cfg(test)]
mod tests;
