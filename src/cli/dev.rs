//! `weir dev PIPELINE… [--input TOPIC=FILE.jsonl]…`: try pipelines with no
//! Kafka at hand. Starts the embedded broker, creates the topics, produces
//! each input file (one payload per line), runs the pipelines, prints every
//! sink and DLQ record as a JSON line `{"topic","key","value"}` on stdout,
//! and exits when the input is drained and windows are flushed (or runs on
//! with `--follow`). A one-line summary goes to stderr.

use super::{load_plans, logging, EXIT_USER_ERROR};
use crate::http::Health;
use crate::kafka::embedded::Embedded;
use crate::metrics::Metrics;
use crate::runtime::daemon::{run_all, shutdown_channel, start_http, termination_signal};
use crate::runtime::{RunOptions, Summary};
use crate::spec::daemon::{KafkaConfig, LogFormat};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Arguments of `weir dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Pipeline files or directories.
    #[arg(required = true)]
    pub pipelines: Vec<PathBuf>,
    /// Input records: TOPIC=FILE.jsonl, one payload per line (repeatable).
    #[arg(long = "input", value_name = "TOPIC=FILE")]
    pub inputs: Vec<String>,
    /// Partitions of each source topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Keep running after the input is drained (Ctrl-C to stop).
    #[arg(long)]
    pub follow: bool,
    /// Serve /metrics, /healthz, /readyz on this address.
    #[arg(long)]
    pub metrics_listen: Option<String>,
}

/// Runs `weir dev`; returns the exit code.
pub fn run(args: &DevArgs) -> i32 {
    let plans = match load_plans(&args.pipelines) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(code) = super::refuse_stream_joins(&plans, "weir dev") {
        return code;
    }
    let mut inputs = Vec::new();
    for spec in &args.inputs {
        match spec.split_once('=') {
            Some((t, f)) if !t.is_empty() && !f.is_empty() => {
                inputs.push((t.to_owned(), PathBuf::from(f)))
            }
            _ => {
                eprintln!("--input {spec}: expected TOPIC=FILE.jsonl");
                return EXIT_USER_ERROR;
            }
        }
    }
    logging::init(LogFormat::Pretty, None, "warn");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weir dev: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(dev(args, plans, inputs)) {
        Ok(()) => 0,
        Err(e) if e.is::<UserError>() => {
            eprintln!("weir dev: {e}");
            super::EXIT_USER_ERROR
        }
        Err(e) => {
            eprintln!("weir dev: {e:#}");
            1
        }
    }
}

/// Bytes of input a partition of the embedded broker takes: librdkafka's
/// mock cluster keeps at most 5 MiB (or 100,000 records) per partition and
/// drops the oldest beyond that, and a record crossing a repartition topic
/// grows by its envelope, so the input stays well below.
const PARTITION_INPUT_BYTES: u64 = 3 << 20;

/// Refuses input files the embedded broker would not keep whole with
/// `partitions` partitions per topic (records would be dropped unseen).
fn check_input_sizes(inputs: &[(String, PathBuf)], partitions: i32) -> anyhow::Result<()> {
    use anyhow::Context as _;
    for (topic, file) in inputs {
        let bytes = std::fs::metadata(file)
            .with_context(|| format!("--input {topic}={}", file.display()))?
            .len();
        let per = bytes / partitions.max(1) as u64;
        if per > PARTITION_INPUT_BYTES {
            let need = bytes.div_ceil(PARTITION_INPUT_BYTES);
            return Err(UserError(format!(
                "--input {topic}={}: {:.1} MiB over {partitions} partition(s) is more than the embedded broker keeps per partition ({} MiB of input; librdkafka's mock cluster drops the oldest records beyond 5 MiB); expected --partitions {need} or more, or `weir run` against a Kafka cluster",
                file.display(),
                bytes as f64 / f64::from(1 << 20),
                PARTITION_INPUT_BYTES >> 20,
            ))
            .into());
        }
    }
    Ok(())
}

/// A mistake in `weir dev`'s arguments (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UserError(String);

async fn dev(
    args: &DevArgs,
    plans: Vec<Arc<crate::plan::Plan>>,
    inputs: Vec<(String, PathBuf)>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    check_input_sizes(&inputs, args.partitions)?;
    let broker = Embedded::start()?;
    let bootstrap = broker.bootstrap_servers();
    let mut sources = BTreeSet::new();
    let mut outputs = BTreeSet::new();
    for p in &plans {
        sources.extend(p.topics.iter().cloned());
        outputs.extend(p.output_topics());
    }
    sources.extend(inputs.iter().map(|(t, _)| t.clone()));
    for p in &plans {
        sources.extend(p.changelog_topics());
        sources.extend(p.repartition_topic().map(str::to_owned));
    }
    for t in &sources {
        broker.create_topic(t, args.partitions)?;
    }
    for t in outputs.iter().filter(|t| !sources.contains(*t)) {
        broker.create_topic(t, 1)?;
    }
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", &bootstrap);

    // Produce the input, round robin over the partitions, and note where
    // it ends.
    let producer: BaseProducer = base.clone().set("linger.ms", "5").create()?;
    for (topic, file) in &inputs {
        let f = std::fs::File::open(file)
            .with_context(|| format!("--input {topic}={}", file.display()))?;
        let mut n = 0;
        for line in std::io::BufReader::new(f).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let mut rec = BaseRecord::<(), str>::to(topic)
                .payload(line.as_str())
                .partition(n % args.partitions);
            n += 1;
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        rec = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
    }
    crate::kafka::client::flush(&producer, Duration::from_secs(30))?;
    let meta: BaseConsumer = base.clone().create()?;
    let mut ends = HashMap::new();
    for t in &sources {
        for p in 0..args.partitions {
            let (_, high) = meta.fetch_watermarks(t, p, Duration::from_secs(10))?;
            ends.insert((t.clone(), p), high);
        }
    }

    // Print sink records as they arrive.
    let printed: Vec<String> = outputs
        .iter()
        .filter(|t| !t.ends_with(".checkpoint"))
        .cloned()
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let tail_targets: Arc<Mutex<Option<HashMap<String, i64>>>> = Arc::new(Mutex::new(None));
    let tail = {
        let (base, printed, stop, targets) = (
            base.clone(),
            printed.clone(),
            Arc::clone(&stop),
            Arc::clone(&tail_targets),
        );
        tokio::task::spawn_blocking(move || tail_sinks(&base, &printed, &stop, &targets))
    };

    let metrics = Metrics::new();
    let health = Arc::new(Health::default());
    if let Some(listen) = &args.metrics_listen {
        let addr = start_http(listen, metrics.clone(), Arc::clone(&health)).await?;
        eprintln!("weir dev: metrics on http://{addr}/metrics");
    }
    let (tx, _rx) = shutdown_channel();
    let signal_tx = tx.clone();
    tokio::spawn(async move {
        termination_signal().await;
        let _ = signal_tx.send(true);
    });
    let opts = RunOptions {
        kafka: KafkaConfig {
            bootstrap_servers: bootstrap,
            client: Default::default(),
        },
        commit_interval: Duration::from_millis(500),
        shutdown_timeout: Duration::from_secs(10),
        commit_timeout: Duration::from_secs(10),
        finish_at: (!args.follow).then_some(ends),
        instance: "dev".to_owned(),
    };
    let result = run_all(plans, opts, metrics, health, tx).await;

    // Let the printer catch up with everything produced, then stop it.
    let mut hw = HashMap::new();
    for t in &printed {
        let (_, high) = meta.fetch_watermarks(t, 0, Duration::from_secs(10))?;
        hw.insert(t.clone(), high);
    }
    *tail_targets.lock().unwrap_or_else(|e| e.into_inner()) = Some(hw);
    let printed_count = tail.await.context("printer task")??;
    stop.store(true, Ordering::Relaxed);
    let summaries = result?;
    let total = summaries
        .iter()
        .fold(Summary::default(), |a, (_, s)| Summary {
            records_in: a.records_in + s.records_in,
            records_out: a.records_out + s.records_out,
            filtered: a.filtered + s.filtered,
            late: a.late + s.late,
            errors: a.errors + s.errors,
            produced: a.produced + s.produced,
            dlq: a.dlq + s.dlq,
        });
    eprintln!(
        "weir dev: records in {}, out {}, filtered {}, late {}, errors {}; produced {} to sinks, {} to the DLQ; printed {}",
        total.records_in, total.records_out, total.filtered, total.late, total.errors, total.produced, total.dlq, printed_count
    );
    Ok(())
}

/// Prints every record of `topics` as a JSON line until `targets` is set
/// and reached (or `stop`). Returns how many were printed.
fn tail_sinks(
    base: &ClientConfig,
    topics: &[String],
    stop: &AtomicBool,
    targets: &Mutex<Option<HashMap<String, i64>>>,
) -> anyhow::Result<u64> {
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", "weir.dev.printer")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        tpl.add_partition_offset(t, 0, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut n = 0u64;
    let stdout = std::io::stdout();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(t) = targets.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if t.iter()
                .all(|(topic, hw)| *hw == 0 || seen.get(topic).is_some_and(|o| o + 1 >= *hw))
            {
                break;
            }
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg?;
        seen.insert(msg.topic().to_owned(), msg.offset());
        let key = msg.key().map(|k| String::from_utf8_lossy(k).into_owned());
        let value = msg
            .payload()
            .map(|p| {
                serde_json::from_slice::<serde_json::Value>(p)
                    .unwrap_or_else(|_| String::from_utf8_lossy(p).into_owned().into())
            })
            .unwrap_or(serde_json::Value::Null);
        let line = serde_json::json!({"topic": msg.topic(), "key": key, "value": value});
        let mut out = stdout.lock();
        let _ = writeln!(out, "{line}");
        n += 1;
    }
    Ok(n)
}
