//! Contenders (8)–(13) and (17): the Java peers in `tests/bench/peers/`
//! (Kafka Streams 4.4 and Flink 2.2 in a local MiniCluster), built by
//! `scripts/bench-peers.sh` into `target/bench/peers/<peer>/` (`make bench`
//! runs it). Each is `java @target/bench/peers/<peer>/jvm.args --job=JOB …`,
//! a JVM of its own with its own consumer group and output topic, and speaks
//! the roles' protocol ([`crate::at_least_once::measure_command`]): it times
//! itself from its first input record to every input record in and every
//! expected output in its output topic, prints one JSON line, and stops
//! (committing its offsets) when stdin closes. CPU time and peak RSS are the
//! JVM's, read from `/proc` before it is told to stop.

use crate::at_least_once::measure_command;
use crate::measure::{Measurement, RunEnv};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/bench/peers` of this checkout.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/peers")
}

/// Runs job `job` (`filter-transform`, `tumbling`, `tumbling-eos`; `join`,
/// Kafka Streams only, against the table topic [`crate::pages::TOPIC`],
/// passed to every job as `--table=`) of peer `peer` (`streams`, `flink`)
/// on the input, to `output`, as group `group`, done once every input
/// record is in and `expected_out` records are in the output topic (0: no
/// output condition).
pub fn measure(
    env: &RunEnv,
    peer: &str,
    job: &str,
    group: &str,
    output: &str,
    expected_out: u64,
) -> Result<Measurement, String> {
    let args = dir().join(peer).join("jvm.args");
    if !args.is_file() {
        return Err(format!(
            "{} is missing: build the peers with scripts/bench-peers.sh (make bench does)",
            args.display()
        ));
    }
    let name = format!("{peer}-{job}");
    let state = env.dir.join(format!("{name}.state"));
    std::fs::create_dir_all(&state).map_err(|e| format!("{}: {e}", state.display()))?;
    let mut cmd = Command::new("java");
    cmd.arg(format!("@{}", args.display()))
        .arg(format!("--job={job}"))
        .arg(format!("--bootstrap={}", env.bootstrap))
        .arg(format!("--input={}", env.input))
        .arg(format!("--output={output}"))
        .arg(format!("--table={}", crate::pages::TOPIC))
        .arg(format!("--group={group}"))
        .arg(format!("--records={}", env.records))
        .arg(format!("--expected-out={expected_out}"))
        .arg(format!("--dir={}", state.display()))
        .current_dir(&env.dir);
    measure_command(env, &name, cmd)
}
