//! `weir lint PATH…`: load and compile pipelines, print every mistake as
//! `file:line:col: field.path: what is wrong (expected …)`, exit 2 if any.

use crate::expr::CelEnv;
use std::path::PathBuf;

/// Lints `paths`; returns the exit code (0 or 2).
pub fn run(paths: &[PathBuf]) -> i32 {
    match crate::plan::load_all(paths, &CelEnv::new()) {
        Ok(plans) => {
            for p in &plans {
                println!("{}: ok ({})", p.file.display(), p.name);
            }
            0
        }
        Err(e) => {
            eprintln!("{e}");
            super::EXIT_USER_ERROR
        }
    }
}
