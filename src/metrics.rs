//! Every Prometheus metric weir exports, defined in one place.
//!
//! Names follow Prometheus conventions (counters end in `_total`, times in
//! `_seconds`, base units). Labels are bounded: pipeline, stage, topic,
//! partition, kind — never a key or raw error text. Every series whose
//! labels are known at load is created at zero on startup
//! ([`Metrics::register_pipeline`]), so dashboards and alerts see it before
//! the first event; partition series appear on assignment.

use crate::operator::{Stage, StageRef};
use crate::plan::Plan;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Handles to every metric.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Source records read.
    pub records_in: IntCounterVec,
    /// Source records that passed every stage (routed to a sink or aggregated into a window).
    pub records_out: IntCounterVec,
    /// Source records dropped by a filter or matching no sink.
    pub records_filtered: IntCounterVec,
    /// Records that failed (decode, expression, type); handled by `errors.policy`.
    pub records_error: IntCounterVec,
    /// Records that arrived for closed windows.
    pub late_records: IntCounterVec,
    /// Records written to the DLQ.
    pub dlq_records: IntCounterVec,
    /// Records produced to sink topics.
    pub sink_records: IntCounterVec,
    /// Open windows.
    pub windows_open: IntGaugeVec,
    /// High watermark minus committed position, per partition.
    pub consumer_lag: IntGaugeVec,
    /// Sink acknowledgement time minus source record timestamp.
    pub end_to_end_latency: HistogramVec,
    /// Offset commits.
    pub commits: IntCounterVec,
    /// Partition assignments and revocations.
    pub rebalances: IntCounterVec,
    /// Per-partition watermark, ms since epoch.
    pub watermark_ms: IntGaugeVec,
    /// `weir_watermark_lag_seconds{pipeline,topic,partition}`: wall clock minus watermark.
    pub watermark_lag: prometheus::GaugeVec,
    /// `weir_state_entries{pipeline}`: open windows held in state.
    pub state_entries: IntGaugeVec,
    /// `weir_state_bytes{pipeline}`: estimated bytes of window state.
    pub state_bytes: IntGaugeVec,
    /// `weir_changelog_restore_seconds{pipeline}`: duration of the last
    /// restore from the changelog at assignment.
    pub restore_seconds: prometheus::GaugeVec,
    /// `weir_table_restore_seconds{pipeline,table}`: how long reading the
    /// table to its end at the start took (DESIGN.md §7 T1).
    pub table_restore_seconds: prometheus::GaugeVec,
    /// `weir_table_entries{pipeline,table}`: keys held in the table.
    pub table_entries: IntGaugeVec,
    /// `weir_join_records_total{pipeline,stage,result}`: records a join
    /// stage matched (`result="matched"`) or did not (`"unmatched"`: `null`
    /// under `left`, filtered under `inner`), DESIGN.md §7.
    pub join_records: IntCounterVec,
    /// `weir_join_held_records{pipeline}`: stream records waiting for a
    /// table's watermark (DESIGN.md §7 T4).
    pub join_held_records: IntGaugeVec,
    /// `weir_changelog_records_total{pipeline}`: changelog records written.
    pub changelog_records: IntCounterVec,
    /// `weir_config_reloads_total{result}`: SIGHUP reloads, `result` is
    /// `success` (every file valid) or `failure` (some file rejected).
    pub config_reloads: IntCounterVec,
    /// 1, labelled with the version.
    pub build_info: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn fgauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::GaugeVec {
    let g =
        prometheus::GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric defined.
    ///
    /// # Panics
    /// Never in practice: names and labels are constants checked by tests.
    pub fn new() -> Self {
        let r = Registry::new();
        let p = &["pipeline"];
        let ps = &["pipeline", "stage"];
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "weir_end_to_end_latency_seconds",
                "Sink acknowledgement time minus source record timestamp, seconds",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                3600.0,
            ]),
            p,
        )
        .expect("valid metric definition");
        r.register(Box::new(latency.clone()))
            .expect("metric registered once");
        let build_info = IntGauge::with_opts(
            Opts::new("weir_build_info", "Always 1; labels give the build")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("valid metric definition");
        r.register(Box::new(build_info.clone()))
            .expect("metric registered once");
        build_info.set(1);
        Metrics {
            records_in: counter(&r, "weir_records_in_total", "Source records read", p),
            records_out: counter(
                &r,
                "weir_records_out_total",
                "Source records that passed every stage",
                p,
            ),
            records_filtered: counter(
                &r,
                "weir_records_filtered_total",
                "Source records filtered out",
                ps,
            ),
            records_error: counter(
                &r,
                "weir_records_error_total",
                "Records that failed in a stage",
                ps,
            ),
            late_records: counter(
                &r,
                "weir_late_records_total",
                "Records for windows already closed",
                ps,
            ),
            dlq_records: counter(
                &r,
                "weir_dlq_records_total",
                "Records written to the DLQ",
                p,
            ),
            sink_records: counter(
                &r,
                "weir_sink_records_total",
                "Records produced to sink topics",
                &["pipeline", "topic"],
            ),
            windows_open: gauge(&r, "weir_windows_open", "Open windows", p),
            consumer_lag: gauge(
                &r,
                "weir_consumer_lag_records",
                "High watermark minus next offset to process",
                &["pipeline", "topic", "partition"],
            ),
            end_to_end_latency: latency,
            commits: counter(&r, "weir_commits_total", "Offset commits", p),
            rebalances: counter(
                &r,
                "weir_rebalances_total",
                "Rebalance events",
                &["pipeline", "kind"],
            ),
            watermark_lag: fgauge(
                &r,
                "weir_watermark_lag_seconds",
                "Wall clock minus partition watermark, seconds",
                &["pipeline", "topic", "partition"],
            ),
            state_entries: gauge(&r, "weir_state_entries", "Open windows held in state", p),
            state_bytes: gauge(&r, "weir_state_bytes", "Estimated bytes of window state", p),
            restore_seconds: fgauge(
                &r,
                "weir_changelog_restore_seconds",
                "Duration of the last state restore from the changelog, seconds",
                p,
            ),
            table_restore_seconds: fgauge(
                &r,
                "weir_table_restore_seconds",
                "Duration of the last read of the table to its end, seconds",
                &["pipeline", "table"],
            ),
            table_entries: gauge(
                &r,
                "weir_table_entries",
                "Keys held in the table",
                &["pipeline", "table"],
            ),
            join_records: counter(
                &r,
                "weir_join_records_total",
                "Records a join stage matched or did not match",
                &["pipeline", "stage", "result"],
            ),
            join_held_records: gauge(
                &r,
                "weir_join_held_records",
                "Stream records waiting for a table's watermark",
                p,
            ),
            changelog_records: counter(
                &r,
                "weir_changelog_records_total",
                "Changelog records written",
                p,
            ),
            watermark_ms: gauge(
                &r,
                "weir_watermark_ms",
                "Partition watermark, ms since the Unix epoch",
                &["pipeline", "topic", "partition"],
            ),
            config_reloads: {
                let c = counter(
                    &r,
                    "weir_config_reloads_total",
                    "Pipeline reloads on SIGHUP, by result",
                    &["result"],
                );
                for result in ["success", "failure"] {
                    c.with_label_values(&[result]);
                }
                c
            },
            build_info,
            registry: r,
        }
    }

    /// Creates every series of `plan` at zero and returns its handles.
    /// Filtered and error series exist for every place of the pipeline,
    /// late series for every window stage (`none` when there is none).
    pub fn register_pipeline(&self, plan: &Plan) -> PipelineCounters {
        let n = plan.name.as_str();
        self.windows_open.with_label_values(&[n]);
        self.state_entries.with_label_values(&[n]);
        self.state_bytes.with_label_values(&[n]);
        self.restore_seconds.with_label_values(&[n]);
        self.changelog_records.with_label_values(&[n]);
        if !plan.tables.is_empty() {
            self.join_held_records.with_label_values(&[n]);
        }
        for t in &plan.tables {
            self.table_restore_seconds.with_label_values(&[n, &t.name]);
            self.table_entries.with_label_values(&[n, &t.name]);
        }
        self.commits.with_label_values(&[n]);
        self.end_to_end_latency.with_label_values(&[n]);
        for kind in ["assign", "revoke"] {
            self.rebalances.with_label_values(&[n, kind]);
        }
        let places = StageRef::all(plan.stages.len(), plan.sinks.len());
        let labels: Vec<String> = places
            .iter()
            .map(|r| r.label(&plan.stages, &plan.sinks))
            .collect();
        for (r, l) in places.iter().zip(&labels) {
            if matches!(r, StageRef::Stage(i) if matches!(plan.stages[*i], Stage::Join(_))) {
                for result in ["matched", "unmatched"] {
                    self.join_records.with_label_values(&[n, l, result]);
                }
            }
        }
        let is_window = |r: &StageRef| matches!(r, StageRef::Stage(i) if matches!(plan.stages[*i], Stage::Window(_)));
        if !places.iter().any(is_window) {
            self.late_records.with_label_values(&[n, "none"]);
        }
        PipelineCounters {
            records_in: self.records_in.with_label_values(&[n]),
            records_out: self.records_out.with_label_values(&[n]),
            filtered: labels
                .iter()
                .map(|l| self.records_filtered.with_label_values(&[n, l]))
                .collect(),
            errors: labels
                .iter()
                .map(|l| self.records_error.with_label_values(&[n, l]))
                .collect(),
            late: places
                .iter()
                .zip(&labels)
                .map(|(r, l)| {
                    // Only window stages get a visible late series; the others
                    // are detached handles that are never incremented.
                    if is_window(r) {
                        self.late_records.with_label_values(&[n, l])
                    } else {
                        IntCounter::new("weir_unused", "never exported")
                            .expect("valid metric definition")
                    }
                })
                .collect(),
            dlq: self.dlq_records.with_label_values(&[n]),
            sinks: plan
                .sinks
                .iter()
                .map(|s| self.sink_records.with_label_values(&[n, &s.topic]))
                .collect(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// The latency histogram of one pipeline.
    pub fn latency(&self, pipeline: &str) -> Histogram {
        self.end_to_end_latency.with_label_values(&[pipeline])
    }
}

/// Metric handles of one pipeline, resolved once so the per-record path
/// touches only atomics (no label hashing).
#[derive(Clone)]
pub struct PipelineCounters {
    /// `weir_records_in_total`.
    pub records_in: IntCounter,
    /// `weir_records_out_total`.
    pub records_out: IntCounter,
    /// `weir_records_filtered_total`, by [`StageRef::index`].
    pub filtered: Vec<IntCounter>,
    /// `weir_records_error_total`, by [`StageRef::index`].
    pub errors: Vec<IntCounter>,
    /// `weir_late_records_total`, by [`StageRef::index`].
    pub late: Vec<IntCounter>,
    /// `weir_dlq_records_total`.
    pub dlq: IntCounter,
    /// `weir_sink_records_total`, by sink index.
    pub sinks: Vec<IntCounter>,
}

impl PipelineCounters {
    /// Sums of this pipeline's counters.
    pub fn totals(&self) -> Totals {
        let sum = |v: &[IntCounter]| v.iter().map(IntCounter::get).sum();
        Totals {
            records_in: self.records_in.get(),
            records_out: self.records_out.get(),
            filtered: sum(&self.filtered),
            late: sum(&self.late),
            errors: sum(&self.errors),
            produced: sum(&self.sinks),
            dlq: self.dlq.get(),
        }
    }
}

/// Totals of one pipeline's record counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Source records read.
    pub records_in: u64,
    /// Passed every stage.
    pub records_out: u64,
    /// Filtered out.
    pub filtered: u64,
    /// Late.
    pub late: u64,
    /// Errors.
    pub errors: u64,
    /// Records produced to sinks.
    pub produced: u64,
    /// Records written to the DLQ.
    pub dlq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_at_zero_after_registration() {
        let m = Metrics::new();
        let loaded = crate::spec::parse_text::<crate::spec::PipelineSpec>(
            std::path::Path::new("p.yaml"),
            "name: p\nsource: {topics: [in]}\nstages: [{filter: value.a > 1}]\nsinks: [{topic: out}]\n",
        )
        .unwrap();
        let plan = crate::plan::compile(&loaded, &crate::expr::CelEnv::new()).unwrap();
        let c = m.register_pipeline(&plan);
        c.filtered[1].inc();
        let text = m.render();
        for line in [
            "weir_records_in_total{pipeline=\"p\"} 0",
            "weir_records_out_total{pipeline=\"p\"} 0",
            "weir_records_filtered_total{pipeline=\"p\",stage=\"0:filter\"} 1",
            "weir_records_error_total{pipeline=\"p\",stage=\"sink:out\"} 0",
            "weir_records_error_total{pipeline=\"p\",stage=\"source\"} 0",
            "weir_late_records_total{pipeline=\"p\",stage=\"none\"} 0",
            "weir_dlq_records_total{pipeline=\"p\"} 0",
            "weir_windows_open{pipeline=\"p\"} 0",
            "weir_commits_total{pipeline=\"p\"} 0",
            "weir_rebalances_total{kind=\"assign\",pipeline=\"p\"} 0",
            "weir_end_to_end_latency_seconds_count{pipeline=\"p\"} 0",
            "weir_sink_records_total{pipeline=\"p\",topic=\"out\"} 0",
            "weir_build_info{version=\"0.1.0\"} 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert!(!text.contains("weir_unused"));
        assert_eq!(c.totals().filtered, 1);
    }
}
