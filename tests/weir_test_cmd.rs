//! `weir test` as a user runs it: the built binary on the example
//! pipelines (every case passes, exit 0), on a fixture with a wrong
//! expectation (exit 1 and the exact diff), and on fixtures with mistakes
//! in their test cases (exit 2, located errors, nothing run). Fixtures are
//! in `tests/fixtures/weir_test/`.

use std::process::Command;

/// Runs `weir test ARGS…` in the crate root; (exit code, stdout, stderr).
fn weir_test(args: &[&str]) -> (i32, String, String) {
    weir("test", args)
}

/// `weir COMMAND ARGS…` in the repository: (exit code, stdout, stderr).
fn weir(command: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg(command)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the weir binary runs");
    (
        out.status.code().expect("weir exits with a code"),
        String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    )
}

#[test]
fn example_pipelines_pass() {
    let (code, stdout, stderr) = weir_test(&["pipelines/"]);
    assert_eq!(
        stdout,
        "ok   pipelines/aircraft-rotations.yaml: departures less than 12h apart are one rotation
ok   pipelines/aircraft-rotations.yaml: a gap of more than 12h starts a new rotation
ok   pipelines/flight-delays.yaml: hourly delays per origin, cancelled flights dropped
ok   pipelines/flight-delays.yaml: an hour averaging over 30 minutes of delay raises an alert
ok   pipelines/flight-delays.yaml: a flight without a readable departure time goes to the DLQ
ok   pipelines/flight-weather.yaml: a flight takes the weather of its scheduled hour and waits for it
6 passed, 0 failed
"
    );
    assert_eq!(stderr, "");
    assert_eq!(code, 0);
}

#[test]
fn a_wrong_expectation_fails_with_a_diff() {
    let (code, stdout, stderr) = weir_test(&[
        "tests/fixtures/weir_test/wrong-expectation.yaml",
        "tests/fixtures/weir_test/no-tests.yaml",
    ]);
    assert_eq!(
        stdout,
        r#"ok   tests/fixtures/weir_test/wrong-expectation.yaml: one flight, one window
FAIL tests/fixtures/weir_test/wrong-expectation.yaml: counts the EWR hour wrong
    --- expected
    +++ actual
    -{"key":"EWR","value":{"flights":3,"avg_dep_delay":-1.0}}
    +{"key":"EWR","value":{"flights":2,"avg_dep_delay":-1.0}}
    +{"topic":"departures-hourly","key":"JFK","value":{"key":"JFK","window":{"start":1357034400000,"end":1357038000000},"flights":1,"avg_dep_delay":2.0}}
    input[3]: filtered by 0:filter
    input[4]: error in 2:window: `value.dep_delay`: gave String("-5") (expected a number); skipped (errors.policy: skip)
skip tests/fixtures/weir_test/no-tests.yaml: no tests
1 passed, 1 failed
"#
    );
    assert_eq!(stderr, "");
    assert_eq!(code, 1);
}

#[test]
fn a_yaml_mistake_in_tests_is_a_file_error() {
    let (code, stdout, stderr) = weir_test(&["tests/fixtures/weir_test/bad-test-field.yaml"]);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "tests/fixtures/weir_test/bad-test-field.yaml:11:5: tests[0]: unknown field `expected` (expected one of `name`, `input`, `expect`)\n"
    );
    assert_eq!(code, 2);
}

#[test]
fn records_the_pipeline_cannot_hold_are_file_errors() {
    records_the_pipeline_cannot_hold_are_file_errors_of("test");
}

/// `weir lint` checks the cases as `weir test` does, without running them.
#[test]
fn lint_reports_the_same_mistakes_in_test_cases() {
    records_the_pipeline_cannot_hold_are_file_errors_of("lint");
}

fn records_the_pipeline_cannot_hold_are_file_errors_of(command: &str) {
    let (code, stdout, stderr) = weir(
        command,
        &[
            "tests/fixtures/weir_test/bad-test-value.yaml",
            "tests/fixtures/weir_test/wrong-expectation.yaml",
        ],
    );
    // Nothing runs, not even the cases of the other file.
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "tests/fixtures/weir_test/bad-test-value.yaml:11:9: tests[0].input[0].value: `format: text` reads strings, this is a JSON document (expected a string, or `format: json`)
tests/fixtures/weir_test/bad-test-value.yaml:12:16: tests[0].input[1].topic: `flihgts` is not a source topic (expected one of flights)
tests/fixtures/weir_test/bad-test-value.yaml:15:16: tests[0].expect[0].topic: `departure` is not an output of this pipeline (expected one of departures)
"
    );
    assert_eq!(code, 2);
}

/// A stream-table join runs in `weir test` (table records are inputs of
/// the table's topic; the planes fixture on real NYC 2013 rows) and shows
/// in `weir plan`. (`pipelines/flight-weather.yaml`, the flights ⋈ weather
/// ⋈ planes example, runs with the other pipelines above and under `weir
/// dev` in tests/dev_cmd.rs.)
#[test]
fn a_table_join_runs_in_weir_test_and_shows_in_weir_plan() {
    let file = "tests/fixtures/weir_test/join-planes.yaml";
    let (code, stdout, stderr) = weir_test(&[file]);
    assert_eq!(
        stdout,
        "ok   tests/fixtures/weir_test/join-planes.yaml: a known plane gives its seats, an unknown one null\n1 passed, 0 failed\n"
    );
    assert_eq!((code, stderr.as_str()), (0, ""));
    let (code, stdout, _) = weir("plan", &[file]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("  table planes from topic planes, global (every instance reads every partition); key value.tailnum; version time the Kafka timestamp; watermark = max version time − 0s; history 0s\n")
            && stdout.contains("    1:join       table planes on value.tailnum (left, latest version) into plane\n"),
        "{stdout}"
    );
}

/// A stream-stream join runs in `weir test` (the join's `stream:` records
/// are inputs of its topic), shows in `weir plan`, and `weir dev` refuses
/// it with exit 2 until the runtime reads a join's second stream.
#[test]
fn a_stream_join_runs_in_weir_test_and_weir_dev_refuses_it() {
    let file = "tests/fixtures/weir_test/orders-payments.yaml";
    let (code, stdout, stderr) = weir_test(&[file]);
    assert_eq!(
        stdout,
        "ok   tests/fixtures/weir_test/orders-payments.yaml: a payment within 15 minutes joins its order, an order without one comes out once with null\n1 passed, 0 failed\n"
    );
    assert_eq!((code, stderr.as_str()), (0, ""));
    let (code, stdout, _) = weir("plan", &[file]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("    0:join       stream [payments] keyed by value.order_id on value.id within 15m (left; allowed lateness 0s) into payment\n"),
        "{stdout}"
    );
    let (code, stdout, stderr) = weir("dev", &[file]);
    assert_eq!(
        stderr,
        "tests/fixtures/weir_test/orders-payments.yaml: pipeline `orders-payments` joins a second stream, which `weir dev` cannot run yet: stream-stream joins run in `weir test` only in this version (expected a pipeline without `join: {stream: …}`)\n"
    );
    assert_eq!((code, stdout.as_str()), (2, ""));
}
