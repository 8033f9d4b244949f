//! `weir plan [--config C] [PATH…]`: print each pipeline's topology with
//! every internal topic (see [`crate::plan::topology`]); with a daemon
//! config, first its broker, client settings (secrets redacted) and
//! instance id. Exit 2 on a mistake, as `lint`.

use crate::expr::CelEnv;
use crate::plan::topology::redacted;
use crate::spec::daemon::{default_instance_id, property_value};
use crate::spec::{load_file, DaemonConfig};
use std::path::{Path, PathBuf};

/// Prints the daemon settings of `config` (when given) and the plans of
/// `paths` (default: the config's `pipelines`); returns the exit code (0
/// or 2).
pub fn run(config: Option<&Path>, paths: &[PathBuf]) -> i32 {
    let mut paths = paths.to_vec();
    if let Some(config) = config {
        let cfg = match load_file::<DaemonConfig>(config) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return super::EXIT_USER_ERROR;
            }
        };
        paths = match super::pipeline_paths(&cfg, config, &paths) {
            Ok(p) => p,
            Err(code) => return code,
        };
        println!("{}", describe_daemon(config, &cfg.doc));
    }
    match crate::plan::load_all(&paths, &CelEnv::new()) {
        Ok(plans) => {
            for p in &plans {
                println!("{}", crate::plan::topology::describe(p));
            }
            0
        }
        Err(e) => {
            eprintln!("{e}");
            super::EXIT_USER_ERROR
        }
    }
}

/// The daemon config as `weir plan` shows it: bootstrap servers, the
/// `kafka.client` properties (secrets as `<redacted>`, after `${VAR}`
/// interpolation) and the instance id.
pub fn describe_daemon(file: &Path, d: &DaemonConfig) -> String {
    let client: Vec<String> = d
        .kafka
        .client
        .iter()
        .map(|(k, v)| format!("{k}={}", redacted(k, &property_value(v))))
        .collect();
    let instance = match &d.instance_id {
        Some(i) => i.clone(),
        None => {
            let id = default_instance_id();
            let host = id.rsplit_once('-').map_or(id.as_str(), |(h, _)| h);
            format!("{host}-<pid of weir run> (default: host name and process id)")
        }
    };
    format!(
        "daemon config {}\n  bootstrap servers {}\n  client settings: {}\n  instance id {instance}\n",
        file.display(),
        d.kafka.bootstrap_servers,
        if client.is_empty() {
            "(librdkafka defaults)".to_owned()
        } else {
            client.join(", ")
        }
    )
}
