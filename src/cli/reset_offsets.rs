//! `weir reset-offsets [--config CONFIG] PIPELINE --to-earliest | --to-latest
//! | --to-datetime RFC3339 | --to-offset N | --shift-by N [--topic T[:P,…]]
//! [--execute]`: reprocess by moving the pipeline's consumer group, the way
//! `kafka-consumer-groups --reset-offsets` does, and with it the state the
//! pipeline's results depend on (checkpoints, changelogs, repartition
//! positions), so that the reprocessed results are those of a first run.
//! Without `--execute` it prints the plan and changes nothing.
//!
//! Exit codes: 0 done (or planned), 1 the broker or the group refused
//! (e.g. the group is not Empty or Dead), 2 a mistake in the files or
//! arguments.

use super::{load_plans, EXIT_USER_ERROR};
use crate::kafka::client;
use crate::kafka::offsets::{GroupAdmin, KafkaGroupAdmin, TopicPartition};
use crate::kafka::reset::{
    check_group, plan_offsets, render, select_partitions, ResetError, ResetTarget, TopicFilter,
};
use crate::kafka::reset_state::{describe, reset_state};
use crate::spec::{load_file, DaemonConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Bound of every broker request and of the state reads and writes.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `weir reset-offsets`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    clap::ArgGroup::new("target")
        .required(true)
        .args(["to_earliest", "to_latest", "to_datetime", "to_offset", "shift_by"])
))]
pub struct ResetArgs {
    /// Daemon config file (brokers and client settings, as for `run`).
    #[arg(long, default_value = "config/weir.yaml")]
    pub config: PathBuf,
    /// The pipeline file whose group is reset.
    pub pipeline: PathBuf,
    /// Each partition's first offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// Each partition's log end.
    #[arg(long)]
    pub to_latest: bool,
    /// The first record at or after this time (RFC 3339, e.g.
    /// 2026-11-01T00:00:00Z), by the broker's time index.
    #[arg(long, value_name = "RFC3339")]
    pub to_datetime: Option<String>,
    /// This offset in every chosen partition (clamped to the log).
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// Move the committed offsets by N records (negative: back).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Only this source topic, or these partitions of it (repeatable).
    #[arg(long = "topic", value_name = "T[:P,…]")]
    pub topics: Vec<TopicFilter>,
    /// Apply the plan; without it, only print it.
    #[arg(long)]
    pub execute: bool,
}

impl ResetArgs {
    fn target(&self) -> Result<ResetTarget, String> {
        Ok(if self.to_earliest {
            ResetTarget::Earliest
        } else if self.to_latest {
            ResetTarget::Latest
        } else if let Some(d) = &self.to_datetime {
            let t = chrono::DateTime::parse_from_rfc3339(d).map_err(|e| {
                format!("--to-datetime {d}: {e} (expected RFC 3339, e.g. 2026-11-01T00:00:00Z)")
            })?;
            ResetTarget::Datetime(t.timestamp_millis())
        } else if let Some(o) = self.to_offset {
            ResetTarget::Offset(o)
        } else {
            ResetTarget::ShiftBy(self.shift_by.unwrap_or(0))
        })
    }
}

/// Runs `weir reset-offsets`; returns the exit code.
pub fn run(args: &ResetArgs) -> i32 {
    let cfg = match load_file::<DaemonConfig>(&args.config) {
        Ok(c) => c.doc,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USER_ERROR;
        }
    };
    let plan = match load_plans(std::slice::from_ref(&args.pipeline)) {
        Ok(mut p) if p.len() == 1 => p.remove(0),
        Ok(p) => {
            eprintln!(
                "{}: {} pipelines; reset-offsets takes one pipeline file",
                args.pipeline.display(),
                p.len()
            );
            return EXIT_USER_ERROR;
        }
        Err(code) => return code,
    };
    let target = match args.target() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("weir reset-offsets: {e}");
            return EXIT_USER_ERROR;
        }
    };
    let base = client::base(&cfg.kafka);
    let admin = match KafkaGroupAdmin::new(&base, TIMEOUT) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("weir reset-offsets: {e}");
            return 1;
        }
    };
    let fail = |e: ResetError| {
        eprintln!("weir reset-offsets: {e}");
        match e {
            ResetError::NotASource { .. }
            | ResetError::NoSuchPartition { .. }
            | ResetError::PartialRepartition(_) => EXIT_USER_ERROR,
            _ => 1,
        }
    };
    let group = match check_group(&admin, &plan.group_id) {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    let topics = match admin.topics() {
        Ok(t) => t,
        Err(e) => return fail(e.into()),
    };
    let is_source = |t: &str| plan.is_source_topic(t);
    let pattern: Option<&dyn Fn(&str) -> bool> = plan.pattern.is_some().then_some(&is_source);
    let all = match select_partitions(&plan.name, &plan.topics, pattern, &[], &topics) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let parts: Vec<TopicPartition> =
        match select_partitions(&plan.name, &plan.topics, pattern, &args.topics, &topics) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
    if plan.repartition.is_some() && parts != all {
        return fail(ResetError::PartialRepartition(plan.name.clone()));
    }
    let rows = match plan_offsets(&admin, &plan.group_id, &parts, target, plan.start_from) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    println!(
        "pipeline {} ({}), consumer group {} (state {})",
        plan.name,
        plan.file.display(),
        plan.group_id,
        group.state
    );
    print!("{}", render(&rows));
    let state = describe(&plan, &topics);
    if !state.is_empty() {
        println!("state reset with the offsets:");
        for l in &state {
            println!("  {l}");
        }
    }
    if !args.execute {
        println!("dry run: nothing changed; add --execute to reset");
        return 0;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weir reset-offsets: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let report = match rt.block_on(reset_state(&base, &plan, &rows, &topics, TIMEOUT)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir reset-offsets: {e}; nothing committed, run it again");
            return 1;
        }
    };
    let mut offsets: Vec<(TopicPartition, i64)> =
        rows.iter().map(|r| (r.tp.clone(), r.new)).collect();
    offsets.extend(report.repartition.iter().cloned());
    if let Err(e) = admin.commit(&plan.group_id, &offsets) {
        eprintln!("weir reset-offsets: {e}; the state is reset, run it again to commit");
        return 1;
    }
    println!(
        "reset: source offsets committed: {}; repartition partitions moved past a reset record: {}; open windows deleted: {}; changelog markers written: {}; checkpoints written: {}",
        rows.len(),
        report.repartition.len(),
        report.tombstones,
        report.markers,
        report.checkpoints
    );
    0
}
