//! `weir lint PATH…`: load and compile pipelines and check their `tests:`
//! cases, print every mistake as `file:line:col: field.path: what is wrong
//! (expected …)`, exit 2 if any.

use crate::expr::CelEnv;
use crate::spec::{PipelineSpec, SpecErrors};
use std::path::PathBuf;

/// Lints `paths`; returns the exit code (0 or 2).
pub fn run(paths: &[PathBuf]) -> i32 {
    let plans = match crate::plan::load_all(paths, &CelEnv::new()) {
        Ok(plans) => plans,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_USER_ERROR;
        }
    };
    // The test cases need the plan: a second pass over files that compiled.
    let mut errs = Vec::new();
    for p in &plans {
        match crate::spec::load_file::<PipelineSpec>(&p.file) {
            Ok(loaded) => {
                if let Err(SpecErrors(e)) = crate::testing::cases(&loaded, p) {
                    errs.extend(e);
                }
            }
            Err(e) => errs.push(e),
        }
    }
    if !errs.is_empty() {
        eprintln!("{}", SpecErrors(errs));
        return super::EXIT_USER_ERROR;
    }
    for p in &plans {
        println!("{}: ok ({})", p.file.display(), p.name);
    }
    0
}
