//! `weir dev` end to end on its embedded broker: what a user sees when a
//! window result fails at the end-of-input flush under `errors.policy: fail`.

use std::process::Command;

#[test]
fn policy_fail_stops_on_a_result_that_fails_when_windows_are_flushed() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(repo)
        .args([
            "dev",
            "tests/fixtures/dev/fail-at-flush.yaml",
            "--input",
            "in=tests/fixtures/dev/fail-at-flush.jsonl",
        ])
        .env("RUST_LOG", "off")
        .output()
        .expect("run weir dev");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "weir dev: pipeline `failp` stopped (errors.policy: fail): window result (key null, window {\"start\":0,\"end\":60000}) failed in stage 1:transform: `value.n / 0`: Division by zero of Int(2)"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no result reaches the sink");
}
