//! The command line: one module per subcommand. `main.rs` only calls [`main`].

pub mod dev;
pub mod lint;
pub mod logging;
pub mod plan;
pub mod reset_offsets;
pub mod run;
pub mod test;

use crate::expr::CelEnv;
use crate::plan::Plan;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

/// weir: run declarative YAML pipelines as Kafka consumer groups.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check pipeline files without a broker; exit 2 on any mistake.
    Lint {
        /// Pipeline files or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print each pipeline's topology: stages per segment, sinks, and every
    /// internal topic (repartition, changelogs, checkpoints); with
    /// `--config`, first the daemon's broker and client settings (secrets
    /// redacted) and instance id.
    Plan {
        /// Daemon config file (its `pipelines` are the default paths).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Pipeline files or directories of them.
        #[arg(required_unless_present = "config")]
        paths: Vec<PathBuf>,
    },
    /// Run pipelines on an embedded broker with sample input, printing sink records.
    Dev(dev::DevArgs),
    /// Reprocess: move the pipeline's consumer group and reset the state
    /// its results depend on (dry run without `--execute`).
    ResetOffsets(reset_offsets::ResetArgs),
    /// Run the `tests:` cases of pipeline files with no broker; exit 1 if
    /// one fails, 2 on a mistake in a file.
    Test {
        /// Pipeline files or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run the daemon against a Kafka-compatible broker.
    Run {
        /// Daemon config file.
        #[arg(long, default_value = "config/weir.yaml")]
        config: PathBuf,
        /// Pipeline files or directories (default: the config's `pipelines`).
        pipelines: Vec<PathBuf>,
    },
}

/// Exit code for a user's mistake in a file or argument.
pub const EXIT_USER_ERROR: i32 = 2;

/// Loads and compiles pipelines, printing every mistake; `Err(2)` if any.
pub fn load_plans(paths: &[PathBuf]) -> Result<Vec<Arc<Plan>>, i32> {
    match crate::plan::load_all(paths, &CelEnv::new()) {
        Ok(plans) => Ok(plans.into_iter().map(Arc::new).collect()),
        Err(e) => {
            eprintln!("{e}");
            Err(EXIT_USER_ERROR)
        }
    }
}

/// `Err(2)` (printed, naming each file) when a plan joins a second stream,
/// which `command` (`weir run`, `weir dev`) cannot run yet.
pub fn refuse_stream_joins(plans: &[Arc<Plan>], command: &str) -> Result<(), i32> {
    let mut refused = false;
    for p in plans.iter().filter(|p| p.has_stream_joins()) {
        eprintln!(
            "{}: pipeline `{}` joins a second stream, which `{command}` cannot run yet: stream-stream joins run in `weir test` only in this version (expected a pipeline without `join: {{stream: …}}`)",
            p.file.display(),
            p.name
        );
        refused = true;
    }
    if refused {
        Err(EXIT_USER_ERROR)
    } else {
        Ok(())
    }
}

/// The pipeline files of a command with a daemon config: `pipelines` when
/// given, else the config's `pipelines:` (relative to the config file).
/// `Err(2)` (printed, located) when both are empty.
pub fn pipeline_paths(
    cfg: &crate::spec::Loaded<crate::spec::DaemonConfig>,
    config: &std::path::Path,
    pipelines: &[PathBuf],
) -> Result<Vec<PathBuf>, i32> {
    if !pipelines.is_empty() {
        return Ok(pipelines.to_vec());
    }
    let base = config.parent().unwrap_or(std::path::Path::new("."));
    let paths: Vec<PathBuf> = cfg.doc.pipelines.iter().map(|p| base.join(p)).collect();
    if paths.is_empty() {
        eprintln!(
            "{}",
            cfg.error_at(
                "pipelines",
                "no pipelines (expected `pipelines: [dir or files]` or pipeline files as arguments)"
            )
        );
        return Err(EXIT_USER_ERROR);
    }
    Ok(paths)
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Lint { paths } => lint::run(&paths),
        Command::Plan { config, paths } => plan::run(config.as_deref(), &paths),
        Command::Dev(args) => dev::run(&args),
        Command::Run { config, pipelines } => run::run(&config, &pipelines),
        Command::Test { paths } => test::run(&paths),
        Command::ResetOffsets(args) => reset_offsets::run(&args),
    }
}
