//! `weir test PATH…`: runs the `tests:` cases of pipeline files with no
//! broker (see [`crate::testing`]) and prints one line per case,
//!
//! ```text
//! ok   pipelines/flight-delays.yaml: hourly delays per origin, cancelled flights dropped
//! FAIL pipelines/flight-delays.yaml: an hour averaging over 30 minutes of delay raises an alert
//!     --- expected
//!     +++ actual
//!     …
//! skip pipelines/other.yaml: no tests
//! 1 passed, 1 failed
//! ```
//!
//! with a diff under each failed case. Every mistake in the files, the
//! cases included, is reported first as `file:line:col: field.path: what is
//! wrong (expected …)`, and nothing runs. Exit code: 0 when every case
//! passed, 1 when one failed, 2 for a mistake in a file.

use super::{load_plans, EXIT_USER_ERROR};
use crate::spec::{load_file, PipelineSpec, SpecErrors};
use crate::testing::{cases, compare, run as run_case};
use std::io::Write;
use std::path::PathBuf;

/// Exit code when a case failed.
pub const EXIT_FAILED: i32 = 1;

/// Runs `weir test` on `paths`; returns the exit code (0, 1 or 2).
pub fn run(paths: &[PathBuf]) -> i32 {
    let plans = match load_plans(paths) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // Check every case of every file before running any.
    let mut errs = Vec::new();
    let mut suites = Vec::new();
    for plan in &plans {
        // Read again for the positions of the cases' fields (the plan
        // keeps the spec, not its location index).
        let loaded = match load_file::<PipelineSpec>(&plan.file) {
            Ok(l) => l,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        match cases(&loaded, plan) {
            Ok(c) => suites.push((plan, c)),
            Err(e) => errs.extend(e.0),
        }
    }
    if !errs.is_empty() {
        eprintln!("{}", SpecErrors(errs));
        return EXIT_USER_ERROR;
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (plan, cases) in suites {
        let file = plan.file.display();
        if cases.is_empty() {
            let _ = writeln!(out, "skip {file}: no tests");
            continue;
        }
        for case in &cases {
            let result = run_case(plan, case);
            match compare(case, &result, "    ") {
                None => {
                    passed += 1;
                    let _ = writeln!(out, "ok   {file}: {}", case.name);
                }
                Some(report) => {
                    failed += 1;
                    let _ = write!(out, "FAIL {file}: {}\n{report}", case.name);
                }
            }
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    if failed > 0 {
        EXIT_FAILED
    } else {
        0
    }
}
