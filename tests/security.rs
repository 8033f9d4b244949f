//! Security, shown on real Kafka (issue 10, §5): weir reaches a broker
//! over `SASL_SSL` (SCRAM-SHA-512) and over mutual TLS, configured only
//! through `kafka.client` in the daemon config with its secrets as
//! `${VAR}`, and gives the same output as on plaintext; wrong credentials
//! and an untrusted broker certificate are reported once by name, keep
//! `/readyz` not ready while `/healthz` answers, and are retried without
//! the process exiting; no secret shows in any log line or in `weir plan`.
//!
//! One Apache Kafka node (`WEIR_KAFKA`, or `.kafka/libs` filled by
//! `scripts/kafka.sh`) with PLAINTEXT, SASL_SSL and SSL listeners serves
//! every test of this file at once (`tests/common/secure.rs`); the
//! certificates are made by the test with the `openssl` CLI. Run:
//! `cargo test --test security -- --nocapture`
//!
//! The flights input is `pipelines/data/flights-2013-01-01-02.jsonl`; its
//! exact expected windows are computed in plain Rust
//! (`tests/common/flights.rs`), as in `tests/e2e.rs`.

#[path = "common/broker.rs"]
mod broker;
#[path = "common/flights.rs"]
mod flights;
#[path = "common/secure.rs"]
mod secure;

use broker::{free_port, http_status, wait_for_port, SinkReader, SinkRecord, Weir};
use flights::{flights_case, tally, FlightsCase, ALERTS, HOURLY, ORIGINS};
use secure::{Pki, ScramUser, SecureKafka};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The SCRAM password of user `weir` (broker side and weir's environment).
const SCRAM_PASSWORD: &str = "scram-Pw-7d41c9e2";
/// The password of SCRAM user `late` when the broker starts.
const LATE_PASSWORD: &str = "late-Pw-c2a9e614";
/// The password weir is given for user `late`, which the broker does not
/// know until a test sets it.
const WRONG_PASSWORD: &str = "wrong-Pw-93b8f0aa";
/// The password of the client's private key.
const KEY_PASSWORD: &str = "key-Pw-5e06d1b7";
/// Every secret; none may appear in any output of weir.
const SECRETS: [&str; 4] = [SCRAM_PASSWORD, LATE_PASSWORD, WRONG_PASSWORD, KEY_PASSWORD];
/// The environment variable the daemon configs take `sasl.password` from.
const PASSWORD_VAR: &str = "WEIR_TEST_SASL_PASSWORD";
/// The environment variable the daemon configs take `ssl.key.password` from.
const KEY_PASSWORD_VAR: &str = "WEIR_TEST_KEY_PASSWORD";

/// Generous: a debug build on a small machine, several weirs at once.
const COMPLETE_WITHIN: Duration = Duration::from_secs(120);
/// How long weir may take to log why it cannot reach Kafka.
const REPORTED_WITHIN: Duration = Duration::from_secs(30);
/// `shutdown_timeout` of the daemon configs.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The PKI and the broker every test of this file shares.
struct Fixture {
    dir: tempfile::TempDir,
    pki: Pki,
    kafka: SecureKafka,
}

/// The running fixture, while some test holds it: the broker stops when
/// the last test using it ends (a test that starts later starts a new one).
static SHARED: Mutex<Weak<Fixture>> = Mutex::new(Weak::new());

fn fixture() -> Arc<Fixture> {
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = shared.upgrade() {
        return f;
    }
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(&dir.path().join("pki"), KEY_PASSWORD);
    let kafka = SecureKafka::start(
        dir.path(),
        &pki,
        &[
            ScramUser {
                name: "weir",
                password: SCRAM_PASSWORD,
            },
            ScramUser {
                name: "late",
                password: LATE_PASSWORD,
            },
        ],
    );
    println!(
        "fixture: PKI and Kafka (PLAINTEXT {}, SASL_SSL {}, SSL {}) in {:.1?}",
        kafka.broker.port,
        kafka.sasl_ssl_port,
        kafka.ssl_port,
        t0.elapsed()
    );
    let f = Arc::new(Fixture { dir, pki, kafka });
    *shared = Arc::downgrade(&f);
    f
}

/// How a weir reaches the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Plaintext,
    /// SASL_SSL, SCRAM-SHA-512 as this user, password from `PASSWORD_VAR`.
    SaslSsl(&'static str),
    /// SSL with the client certificate, key password from `KEY_PASSWORD_VAR`.
    MutualTls,
}

impl Fixture {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `kafka.bootstrap_servers` and `kafka.client` of `transport`; `ca` is
    /// the CA file weir verifies the broker with.
    fn client(&self, transport: Transport, ca: &Path) -> (String, Vec<(&'static str, String)>) {
        let mut client = vec![("session.timeout.ms", broker::SESSION_TIMEOUT_MS.to_owned())];
        let tls = |c: &mut Vec<(&'static str, String)>| {
            c.push(("ssl.ca.location", ca.display().to_string()));
            c.push(("ssl.endpoint.identification.algorithm", "https".to_owned()));
        };
        let port = match transport {
            Transport::Plaintext => self.kafka.broker.port,
            Transport::SaslSsl(user) => {
                client.push(("security.protocol", "SASL_SSL".to_owned()));
                client.push(("sasl.mechanism", "SCRAM-SHA-512".to_owned()));
                client.push(("sasl.username", user.to_owned()));
                client.push(("sasl.password", format!("${{{PASSWORD_VAR}}}")));
                tls(&mut client);
                self.kafka.sasl_ssl_port
            }
            Transport::MutualTls => {
                client.push(("security.protocol", "SSL".to_owned()));
                tls(&mut client);
                let cert = self.pki.client_cert.display().to_string();
                client.push(("ssl.certificate.location", cert));
                let key = self.pki.client_key.display().to_string();
                client.push(("ssl.key.location", key));
                client.push(("ssl.key.password", format!("${{{KEY_PASSWORD_VAR}}}")));
                self.kafka.ssl_port
            }
        };
        (format!("127.0.0.1:{port}"), client)
    }
}

/// `pipelines/flight-delays.yaml` (without its `tests:`) renamed for one
/// run: pipeline `flight-delays-TAG` reads `flights-TAG` and writes
/// `departures-hourly-TAG`, `delay-alerts-TAG` and `flight-delays-TAG.dlq`.
fn pipeline_for(dir: &Path, tag: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("pipelines/flight-delays.yaml"))
        .expect("pipelines/flight-delays.yaml");
    let mut text = text.split("\ntests:").next().unwrap().to_owned();
    for (from, to) in [
        (
            "name: flight-delays\n",
            format!("name: flight-delays-{tag}\n"),
        ),
        ("topics: [flights]", format!("topics: [flights-{tag}]")),
        (
            "- topic: departures-hourly\n",
            format!("- topic: {HOURLY}-{tag}\n"),
        ),
        (
            "- topic: delay-alerts\n",
            format!("- topic: {ALERTS}-{tag}\n"),
        ),
        (
            "dlq_topic: flight-delays.dlq",
            format!("dlq_topic: flight-delays-{tag}.dlq"),
        ),
    ] {
        assert_eq!(text.matches(from).count(), 1, "{from:?} in the pipeline");
        text = text.replace(from, &to);
    }
    let path = dir.join(format!("flight-delays-{tag}.yaml"));
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// The daemon config of one weir: `kafka.client` as given (secrets as
/// `${VAR}`), JSON logs, the pipeline file.
fn write_config(
    dir: &Path,
    tag: &str,
    (bootstrap, client): &(String, Vec<(&'static str, String)>),
    metrics_port: u16,
    pipeline: &Path,
) -> PathBuf {
    let mut cfg = format!("kafka:\n  bootstrap_servers: \"{bootstrap}\"\n  client:\n");
    for (k, v) in client {
        cfg += &format!("    {k}: \"{v}\"\n");
    }
    cfg += &format!(
        "metrics:\n  listen: \"127.0.0.1:{metrics_port}\"\n\
         log:\n  format: json\n  level: info\n\
         commit_interval: 1s\n\
         shutdown_timeout: {}s\n\
         pipelines: [{:?}]\n",
        SHUTDOWN_TIMEOUT.as_secs(),
        pipeline.display().to_string()
    );
    let path = dir.join(format!("weir-{tag}.yaml"));
    std::fs::write(&path, cfg).expect("write config");
    path
}

/// Starts `weir run` for `config` with the secrets `password` and the key
/// password in its environment; returns once its HTTP endpoint listens.
fn start_weir(f: &Fixture, tag: &str, config: &Path, metrics_port: u16, password: &str) -> Weir {
    let env = [(PASSWORD_VAR, password), (KEY_PASSWORD_VAR, KEY_PASSWORD)];
    let name = format!("weir-{tag}");
    let mut w = Weir::start_with_env(f.dir(), &name, config, &[], metrics_port, &env);
    wait_for_port(metrics_port, Duration::from_secs(30), || w.assert_alive());
    w
}

/// Asserts that no secret occurs in `text` (`what` names it).
fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(
            !text.contains(s),
            "a secret ({s:?}) appears in {what}:\n{text}"
        );
    }
}

/// Asserts that no secret occurs in weir's stderr or stdout.
fn assert_logs_free_of_secrets(w: &Weir) {
    let stdout = w.stderr.with_extension("stdout");
    for path in [&w.stderr, &stdout] {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_no_secret(&path.display().to_string(), &text);
    }
}

/// The lines of weir's stderr that contain `needle`.
fn lines_with(w: &Weir, needle: &str) -> Vec<String> {
    std::fs::read_to_string(&w.stderr)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Waits (at most `timeout`, weir alive) for a stderr line containing
/// `needle`; returns the first.
fn wait_for_line(w: &mut Weir, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = lines_with(w, needle).into_iter().next() {
            return l;
        }
        w.assert_alive();
        assert!(
            Instant::now() < deadline,
            "no line with {needle:?} in {} within {timeout:?}",
            w.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most `timeout`, weir alive) until `GET path` answers `code`.
fn wait_for_status(w: &mut Weir, path: &str, code: u16, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let (got, body) = http_status(w.metrics_port, path);
        if got == code {
            return body;
        }
        w.assert_alive();
        assert!(
            Instant::now() < deadline,
            "GET {path} of {} still {got} ({body:?}) after {timeout:?}, want {code}",
            w.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Not ready, yet alive: `/readyz` 503 naming the pipeline, `/healthz` 200.
fn assert_not_ready_but_healthy(w: &mut Weir, pipeline: &str) {
    w.assert_alive();
    assert_eq!(
        http_status(w.metrics_port, "/readyz"),
        (503, format!("not ready: {pipeline}\n")),
        "/readyz of {}",
        w.name
    );
    assert_eq!(
        http_status(w.metrics_port, "/healthz"),
        (200, "ok\n".to_owned()),
        "/healthz of {}",
        w.name
    );
}

/// One weir running the flights pipeline over one transport.
struct FlightsRun {
    tag: &'static str,
    weir: Weir,
    reader: Option<SinkReader>,
}

/// (sink, key, payload) of every record of a run, sorted: what the three
/// runs must agree on.
fn normalized(tag: &str, records: &[SinkRecord]) -> Vec<(String, Option<String>, Option<String>)> {
    let mut v: Vec<_> = records
        .iter()
        .map(|r| {
            let sink = r.topic.strip_suffix(&format!("-{tag}")).unwrap_or(&r.topic);
            (sink.to_owned(), r.key.clone(), r.payload.clone())
        })
        .collect();
    v.sort();
    v
}

fn sink_of(tag: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |topic: &str| {
        let sink = topic.strip_suffix(&format!("-{tag}"))?;
        [HOURLY, ALERTS].contains(&sink).then(|| sink.to_owned())
    }
}

#[test]
fn flights_output_is_the_same_over_plaintext_sasl_ssl_and_mtls() {
    let t0 = Instant::now();
    let f = fixture();
    let case: FlightsCase = flights_case(
        &repo().join("pipelines/data/flights-2013-01-01-02.jsonl"),
        None,
    );
    println!(
        "input: {} records ({} cancelled, 3 sentinels); expecting {} {HOURLY} + {} {ALERTS} records per run",
        case.records.len(),
        case.cancelled,
        case.hourly_windows,
        case.alert_windows
    );
    let broker = &f.kafka.broker;
    let mut runs = Vec::new();
    for (tag, transport) in [
        ("plaintext", Transport::Plaintext),
        ("sasl-ssl", Transport::SaslSsl("weir")),
        ("mtls", Transport::MutualTls),
    ] {
        let topic = format!("flights-{tag}");
        broker.create_topic(&topic, ORIGINS.len() as i32);
        broker::produce_all(broker, &topic, &case.records);
        let pipeline = pipeline_for(f.dir(), tag);
        let metrics_port = free_port();
        let client = f.client(transport, &f.pki.ca);
        let config = write_config(f.dir(), tag, &client, metrics_port, &pipeline);
        let weir = start_weir(&f, tag, &config, metrics_port, SCRAM_PASSWORD);
        runs.push(FlightsRun {
            tag,
            weir,
            reader: None,
        });
    }
    for run in &mut runs {
        let sinks = [
            format!("{HOURLY}-{}", run.tag),
            format!("{ALERTS}-{}", run.tag),
        ];
        let sinks: Vec<&str> = sinks.iter().map(String::as_str).collect();
        let weir = &mut run.weir;
        let mut reader = SinkReader::new(broker, &sinks, Duration::from_secs(60), || {
            weir.assert_alive()
        });
        let expected = &case.expected;
        let tag = run.tag;
        reader.read_until(
            COMPLETE_WITHIN,
            |recs| tally(expected, recs, sink_of(tag)).present_total() == expected.len(),
            || weir.assert_alive(),
            |recs| tally(expected, recs, sink_of(tag)).summary(),
        );
        // Ready once it has joined its group and reads.
        wait_for_status(weir, "/readyz", 200, Duration::from_secs(30));
        println!(
            "{tag}: every expected window out after {:.1?}",
            t0.elapsed()
        );
        run.reader = Some(reader);
    }
    let mut outputs = Vec::new();
    for run in &mut runs {
        let status = run
            .weir
            .terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(5));
        assert!(
            status.success(),
            "{} exit status after SIGTERM: {status}",
            run.weir.name
        );
        let reader = run.reader.as_mut().unwrap();
        reader.read_to_end(broker, Duration::from_secs(30));
        let t = tally(&case.expected, &reader.records, sink_of(run.tag));
        println!(
            "{}: {} sink records; {}",
            run.tag,
            reader.records.len(),
            t.summary()
        );
        assert!(t.exact(), "{}: {}", run.tag, t.summary());
        assert_eq!(
            reader.records.len(),
            case.expected.len(),
            "{}: sink records",
            run.tag
        );
        assert_logs_free_of_secrets(&run.weir);
        outputs.push((run.tag, normalized(run.tag, &reader.records)));
    }
    let (_, plain) = &outputs[0];
    for (tag, out) in &outputs[1..] {
        assert!(out == plain, "{tag} output differs from plaintext");
    }
    println!(
        "flights_output_is_the_same_over_plaintext_sasl_ssl_and_mtls: {:.1?}",
        t0.elapsed()
    );
}

/// Sets the broker's SCRAM-SHA-512 password of `user` to `password`
/// (`tests/fixtures/security/AlterScram.java` through the Admin API, on
/// PLAINTEXT; the password goes through stdin, not the command line).
fn set_scram_password(f: &Fixture, user: &str, password: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("java")
        .arg("-cp")
        .arg(format!("{}/*", broker::kafka_libs().display()))
        .arg(repo().join("tests/fixtures/security/AlterScram.java"))
        .arg(f.kafka.broker.bootstrap())
        .arg(user)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run java AlterScram.java");
    writeln!(child.stdin.take().unwrap(), "{password}").expect("password to AlterScram");
    let out = child.wait_with_output().expect("wait for AlterScram");
    assert!(
        out.status.success(),
        "AlterScram {user}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that weir logged "cannot reach Kafka" with a cause containing
/// `needle` once, plus at most one
/// reminder per started minute since `first_seen` (when the test saw the
/// first line): rate-limited, not once per attempt.
fn assert_reported_once(w: &Weir, needle: &str, first_seen: Instant) {
    let lines: Vec<String> = lines_with(w, "\"message\":\"cannot reach Kafka, retrying\"")
        .into_iter()
        .filter(|l| l.contains(needle))
        .collect();
    let reminders = (first_seen.elapsed() + Duration::from_secs(1)).as_secs() / 60;
    assert!(
        !lines.is_empty() && lines.len() as u64 <= 1 + reminders,
        "want the cause logged once (+{reminders} reminders), got {} lines: {lines:#?}",
        lines.len()
    );
}

#[test]
fn wrong_scram_password_is_reported_once_not_ready_and_retried_until_accepted() {
    let t0 = Instant::now();
    let f = fixture();
    let tag = "wrong-password";
    let pipeline_name = format!("flight-delays-{tag}");
    f.kafka
        .broker
        .create_topic(&format!("flights-{tag}"), ORIGINS.len() as i32);
    let pipeline = pipeline_for(f.dir(), tag);
    let metrics_port = free_port();
    let client = f.client(Transport::SaslSsl("late"), &f.pki.ca);
    let config = write_config(f.dir(), tag, &client, metrics_port, &pipeline);
    let mut weir = start_weir(&f, tag, &config, metrics_port, WRONG_PASSWORD);
    let line = wait_for_line(&mut weir, "SASL authentication error", REPORTED_WITHIN);
    let first_seen = Instant::now();
    println!("{tag}: after {:.1?}: {line}", t0.elapsed());
    for want in [
        "\"level\":\"ERROR\"",
        "\"message\":\"cannot reach Kafka, retrying\"",
        &format!("\"pipeline\":\"{pipeline_name}\""),
        &format!(
            "\"cause\":\"sasl_ssl://127.0.0.1:{}/bootstrap: SASL authentication error: Authentication failed \
             during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512\"",
            f.kafka.sasl_ssl_port
        ),
    ] {
        assert!(line.contains(want), "want {want} in {line}");
    }
    assert_not_ready_but_healthy(&mut weir, &pipeline_name);

    // The broker now takes the password weir has: weir, still retrying,
    // authenticates and the pipeline joins its group.
    set_scram_password(&f, "late", WRONG_PASSWORD);
    let t_fix = Instant::now();
    wait_for_status(&mut weir, "/readyz", 200, Duration::from_secs(60));
    println!(
        "{tag}: ready {:.1?} after the password was set",
        t_fix.elapsed()
    );
    let reached = lines_with(&weir, "Kafka reached");
    assert_eq!(reached.len(), 1, "{reached:#?}");
    assert_reported_once(&weir, "SASL authentication error", first_seen);
    let status = weir.terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(5));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_logs_free_of_secrets(&weir);
    println!("{tag}: {:.1?}", t0.elapsed());
}

#[test]
fn untrusted_broker_certificate_is_reported_once_not_ready_and_retried_until_trusted() {
    let t0 = Instant::now();
    let f = fixture();
    let tag = "untrusted";
    f.kafka
        .broker
        .create_topic(&format!("flights-{tag}"), ORIGINS.len() as i32);
    let pipeline = pipeline_for(f.dir(), tag);
    let metrics_port = free_port();
    // weir trusts the CA in `trust`: first one that did not sign the
    // broker's certificate.
    let trust = f.dir().join(format!("trust-{tag}.pem"));
    std::fs::copy(&f.pki.other_ca, &trust).expect("copy other CA");
    let client = f.client(Transport::MutualTls, &trust);
    let config = write_config(f.dir(), tag, &client, metrics_port, &pipeline);
    let mut weir = start_weir(&f, tag, &config, metrics_port, SCRAM_PASSWORD);
    let line = wait_for_line(&mut weir, "certificate verify failed", REPORTED_WITHIN);
    let first_seen = Instant::now();
    println!("{tag}: after {:.1?}: {line}", t0.elapsed());
    for want in [
        "\"level\":\"ERROR\"",
        "\"message\":\"cannot reach Kafka, retrying\"",
        "\"pipeline\":\"flight-delays-untrusted\"",
        &format!(
            "\"cause\":\"ssl://127.0.0.1:{}/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate \
             verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly \
             configured or root CA certificates are installed",
            f.kafka.ssl_port
        ),
    ] {
        assert!(line.contains(want), "want {want} in {line}");
    }
    assert_not_ready_but_healthy(&mut weir, "flight-delays-untrusted");

    // The right CA in place of the wrong one: the next attempt reads it,
    // connects, and the pipeline joins its group.
    let tmp = trust.with_extension("new");
    std::fs::copy(&f.pki.ca, &tmp).expect("copy CA");
    std::fs::rename(&tmp, &trust).expect("replace trusted CA");
    let t_fix = Instant::now();
    wait_for_status(&mut weir, "/readyz", 200, Duration::from_secs(60));
    println!(
        "{tag}: ready {:.1?} after the CA was replaced",
        t_fix.elapsed()
    );
    let reached = lines_with(&weir, "Kafka reached");
    assert_eq!(reached.len(), 1, "{reached:#?}");
    assert_reported_once(&weir, "certificate verify failed", first_seen);
    let status = weir.terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(5));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_logs_free_of_secrets(&weir);
    println!("{tag}: {:.1?}", t0.elapsed());
}

#[test]
fn weir_plan_redacts_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pipeline = pipeline_for(dir.path(), "plan");
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let text = text.replacen(
        "\nsource:\n",
        &format!(
            "\nsource:\n  consumer:\n    sasl.password: \"${{{PASSWORD_VAR}}}\"\n    \
             ssl.key.password: \"${{{KEY_PASSWORD_VAR}}}\"\n    fetch.min.bytes: 1\n"
        ),
        1,
    );
    std::fs::write(&pipeline, text).unwrap();
    // The daemon's client settings as `weir run` would take them, with the
    // config's `pipelines:` as the default paths.
    let config = dir.path().join("weir.yaml");
    std::fs::write(
        &config,
        format!(
            "kafka:\n  bootstrap_servers: \"127.0.0.1:9093\"\n  client:\n    security.protocol: SASL_SSL\n    \
             sasl.mechanism: SCRAM-SHA-512\n    sasl.username: weir\n    sasl.password: \"${{{PASSWORD_VAR}}}\"\n    \
             ssl.key.password: \"${{{KEY_PASSWORD_VAR}}}\"\ninstance_id: r0\npipelines: [{:?}]\n",
            pipeline.display().to_string()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("plan")
        .arg("--config")
        .arg(&config)
        .env(PASSWORD_VAR, SCRAM_PASSWORD)
        .env(KEY_PASSWORD_VAR, KEY_PASSWORD)
        .output()
        .expect("run weir plan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("weir plan:\n{stdout}{stderr}");
    assert!(out.status.success(), "weir plan: {}\n{stderr}", out.status);
    assert!(
        stdout.contains(
            "  client settings: sasl.mechanism=SCRAM-SHA-512, sasl.password=<redacted>, sasl.username=weir, \
             security.protocol=SASL_SSL, ssl.key.password=<redacted>\n  instance id r0\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "consumer settings: fetch.min.bytes=1, sasl.password=<redacted>, ssl.key.password=<redacted>"
        ),
        "{stdout}"
    );
    assert_no_secret("weir plan's stdout", &stdout);
    assert_no_secret("weir plan's stderr", &stderr);
}
