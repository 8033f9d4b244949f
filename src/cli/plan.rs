//! `weir plan PATH…`: print each pipeline's topology with every internal
//! topic (see [`crate::plan::topology`]); exit 2 on a mistake, as `lint`.

use crate::expr::CelEnv;
use std::path::PathBuf;

/// Prints the plans of `paths`; returns the exit code (0 or 2).
pub fn run(paths: &[PathBuf]) -> i32 {
    match crate::plan::load_all(paths, &CelEnv::new()) {
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
