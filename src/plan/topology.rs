//! `weir plan`: a plan as text, the way the runtime will run it: which
//! stages run on the source partitions and which after the repartition
//! topic, every internal topic weir creates (repartition, changelogs,
//! checkpoints), sinks and DLQ.

use super::Plan;
use crate::codec::EventTime;
use crate::operator::window::{EmitMode, WindowKind};
use crate::operator::Stage;
use crate::spec::{Delivery, LatePolicy};
use std::fmt::Write as _;
use std::sync::Arc;

fn ms(v: i64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(v.max(0) as u64)).to_string()
}

/// Where an event (or version) time comes from, in words.
fn event_time(t: &EventTime) -> String {
    match t {
        EventTime::KafkaTimestamp => "the Kafka timestamp".to_owned(),
        EventTime::Path(p, unit) => {
            format!("{} in {}", p.source(), format!("{unit:?}").to_lowercase())
        }
    }
}

fn stage_line(i: usize, s: &Stage, plan: &Plan) -> String {
    match s {
        Stage::Filter(f) => format!("{i}:filter     {}", f.predicate.source()),
        Stage::KeyBy(k) => format!("{i}:key_by     {}", k.key.source()),
        Stage::Transform(t) => {
            let mut parts = Vec::new();
            if !t.select.is_empty() {
                parts.push(format!("select {}", t.select.len()));
            }
            if !t.rename.is_empty() {
                parts.push(format!("rename {}", t.rename.len()));
            }
            if !t.set.is_empty() {
                let names: Vec<&str> = t.set.iter().map(|(n, _)| n.as_str()).collect();
                parts.push(format!("set {}", names.join(", ")));
            }
            if !t.drop.is_empty() {
                parts.push(format!("drop {}", t.drop.len()));
            }
            format!("{i}:transform  {}", parts.join("; "))
        }
        Stage::StreamJoin(j) => {
            let sj = plan.stream_joins.iter().find(|d| Arc::ptr_eq(&d.join, j));
            format!(
                "{i}:join       stream {} keyed by {} on {} within {} ({}; allowed lateness {}) into {}",
                sj.map_or_else(String::new, |d| format!("[{}]", d.topics.join(", "))),
                j.right_key.source(),
                j.on.source(),
                ms(j.within),
                match j.kind {
                    crate::operator::join::IntervalType::Inner => "inner",
                    crate::operator::join::IntervalType::Left => "left",
                    crate::operator::join::IntervalType::Outer => "outer",
                },
                ms(j.allowed_lateness),
                j.into
            )
        }
        Stage::Join(j) => format!(
            "{i}:join       table {} on {} ({}, {}) into {}",
            j.table,
            j.on.source(),
            match j.kind {
                crate::operator::join::JoinType::Inner => "inner",
                crate::operator::join::JoinType::Left => "left",
            },
            match j.time {
                crate::operator::join::JoinTime::Event => "version at event time",
                crate::operator::join::JoinTime::Latest => "latest version",
            },
            j.into
        ),
        Stage::Window(w) => {
            let kind = match w.kind {
                WindowKind::Aligned(a) if a.size == a.advance => format!("tumbling {}", ms(a.size)),
                WindowKind::Aligned(a) => format!("hopping {} every {}", ms(a.size), ms(a.advance)),
                WindowKind::Session { gap } => format!("session gap {}", ms(gap)),
            };
            let emit = match w.emit {
                EmitMode::Final => "final".to_owned(),
                EmitMode::Update => "update".to_owned(),
                EmitMode::Every(d) => format!("every {}", ms(d)),
            };
            let late = match w.late {
                LatePolicy::Drop => "dropped",
                LatePolicy::Dlq => "to the DLQ",
            };
            let aggs: Vec<&str> = w.aggregates.iter().map(|a| a.name.as_str()).collect();
            format!(
                "{i}:window     {kind}, allowed lateness {}, emit {emit}, late records {late}; aggregates {}\n               state → {} (internal, compacted)",
                ms(w.allowed_lateness),
                aggs.join(", "),
                crate::state::store::StoreSpec::window(i).changelog(&plan.group_id)
            )
        }
    }
}

/// `value`, or `<redacted>` when the librdkafka property `key` holds a
/// secret (passwords, secrets, tokens, private keys, JAAS config), so that
/// `weir plan` output can be pasted into a ticket.
pub fn redacted<'a>(key: &str, value: &'a str) -> &'a str {
    const SECRET: [&str; 6] = ["password", "secret", "token", "jaas", ".key.pem", "private"];
    let k = key.to_ascii_lowercase();
    if SECRET.iter().any(|s| k.contains(s)) || k == "ssl.key.location" || k.ends_with("_key") {
        "<redacted>"
    } else {
        value
    }
}

/// The plan as indented text (see the module doc).
pub fn describe(plan: &Plan) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "pipeline {} ({})", plan.name, plan.file.display());
    let delivery = match plan.delivery {
        Delivery::AtLeastOnce => "at_least_once",
        Delivery::ExactlyOnce => "exactly_once",
    };
    let _ = writeln!(o, "  consumer group {}, delivery {delivery}", plan.group_id);
    if !plan.consumer.is_empty() {
        let props: Vec<String> = plan
            .consumer
            .iter()
            .map(|(k, v)| format!("{k}={}", redacted(k, v)))
            .collect();
        let _ = writeln!(o, "  consumer settings: {}", props.join(", "));
    }
    let source = match &plan.pattern {
        Some(p) => format!("topics matching {p}"),
        None => plan.topics.join(", "),
    };
    let time = event_time(&plan.decoder.event_time);
    let _ = writeln!(
        o,
        "  source {source}; event time {time}; watermark = max event time − {}{}",
        ms(plan.max_out_of_orderness),
        plan.idle_timeout
            .map(|t| format!(", idle after {}", ms(t)))
            .unwrap_or_default()
    );
    for t in &plan.tables {
        let version = event_time(&t.decoder.event_time);
        let _ = writeln!(
            o,
            "  table {} from topic {}, {}; key {}; version time {version}; watermark = max version time − {}; history {}",
            t.name,
            t.topic,
            if t.global {
                "global (every instance reads every partition)"
            } else {
                "not global, but read whole by every instance in this version (as a global table; no repartition)"
            },
            t.key.as_ref().map_or("the record key", |k| k.source()),
            ms(t.max_out_of_orderness),
            ms(t.history),
        );
    }
    let split = plan.repartition.as_ref().map(|r| r.after + 1);
    let _ = writeln!(o, "  on the source partitions:");
    for (i, s) in plan.stages.iter().enumerate() {
        if Some(i) == split {
            let topic = plan.repartition_topic().unwrap_or_default();
            let _ = writeln!(
                o,
                "    → {topic} (internal: keyed by the new key, the source's partition count, watermark markers)\n  on the partitions of {topic}:"
            );
        }
        let _ = writeln!(o, "    {}", stage_line(i, s, plan));
    }
    let _ = writeln!(o, "  sinks:");
    for s in plan.sinks.iter() {
        let mut line = format!("    {}", s.topic);
        if let Some(w) = &s.when {
            let _ = write!(line, "  when {}", w.source());
        }
        if let Some(k) = &s.key {
            let _ = write!(line, "  key {}", k.source());
        }
        let _ = writeln!(o, "{line}");
    }
    if plan.uses_dlq {
        let _ = writeln!(o, "  DLQ {}", plan.dlq_topic);
    }
    let mut internal: Vec<String> = plan
        .repartition_topic()
        .map(str::to_owned)
        .into_iter()
        .collect();
    internal.extend(plan.changelog_topics());
    if plan.delivery == Delivery::AtLeastOnce {
        internal.push(plan.checkpoint_topic.clone());
    }
    let _ = writeln!(o, "  internal topics: {}", internal.join(", "));
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::CelEnv;
    use crate::spec::{parse_text, PipelineSpec};
    use std::path::Path;

    #[test]
    fn names_every_segment_and_internal_topic() {
        let yaml = "name: visits
source:
  topics: [visits]
  event_time: {path: $.ts, unit: ms}
  watermark: {max_out_of_orderness: 5s}
stages:
  - filter: value.ok
  - key_by: value.user
  - window:
      session: {gap: 30m}
      emit: update
      aggregate: {n: count()}
sinks:
  - topic: sessions
    when: value.n > 1
";
        let yaml = yaml.replace(
            "  watermark:",
            "  consumer: {fetch.min.bytes: 1, sasl.password: hunter2, ssl.key.pem: PEM}\n  watermark:",
        );
        let yaml = yaml.as_str();
        let loaded = parse_text::<PipelineSpec>(Path::new("v.yaml"), yaml).unwrap();
        let plan = crate::plan::compile(&loaded, &CelEnv::new()).unwrap();
        assert_eq!(
            describe(&plan),
            "pipeline visits (v.yaml)
  consumer group weir.visits, delivery at_least_once
  consumer settings: fetch.min.bytes=1, sasl.password=<redacted>, ssl.key.pem=<redacted>
  source visits; event time $.ts in ms; watermark = max event time − 5s
  on the source partitions:
    0:filter     value.ok
    1:key_by     value.user
    → weir.visits.1.repartition (internal: keyed by the new key, the source's partition count, watermark markers)
  on the partitions of weir.visits.1.repartition:
    2:window     session gap 30m, allowed lateness 0s, emit update, late records dropped; aggregates n
               state → weir.visits.2.changelog (internal, compacted)
  sinks:
    sessions  when value.n > 1
  internal topics: weir.visits.1.repartition, weir.visits.2.changelog, weir.visits.checkpoint
"
        );
    }

    #[test]
    fn internal_topics_follow_the_group_id() {
        let yaml = "name: visits
group_id: team-a.visits
source:
  topics: [visits]
stages:
  - key_by: value.user
  - window:
      tumbling: 1m
      aggregate: {n: count()}
sinks:
  - topic: counts
";
        let loaded = parse_text::<PipelineSpec>(Path::new("v.yaml"), yaml).unwrap();
        let plan = crate::plan::compile(&loaded, &CelEnv::new()).unwrap();
        let text = describe(&plan);
        assert!(
            text.contains("consumer group team-a.visits, delivery at_least_once"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "  internal topics: team-a.visits.0.repartition, team-a.visits.1.changelog, team-a.visits.checkpoint\n"
            ),
            "{text}"
        );
    }
}
