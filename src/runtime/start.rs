//! Starting a pipeline: wait for the cluster and the source topics, create
//! the internal topics, the producers (transactional under exactly-once)
//! and the consumer, and subscribe.

use super::joins::TableCache;
use super::partitions::Partitions;
use super::pipeline::{RunOptions, RuntimeError, Summary};
use super::rebalance::WeirContext;
use super::shared::Shared;
use super::tables::TableReader;
use crate::http::Health;
use crate::kafka::admin::{ensure_topics, TopicSpec};
use crate::kafka::client;
use crate::kafka::sink::{AckContext, Failure, StateContext};
use crate::metrics::Metrics;
use crate::plan::Plan;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseProducer, Producer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What [`start`] gives.
pub(super) enum Start {
    /// Subscribed: the shared state, the consumer and, when the pipeline
    /// has tables, their reader (every table read to its end: T1).
    Running(
        Arc<Shared>,
        StreamConsumer<WeirContext>,
        Option<TableReader>,
    ),
    /// Shut down before the cluster answered.
    Stopped(Summary),
}

/// Starts `plan` (see the module doc); waits for the cluster as long as it
/// takes, unless `shutdown` turns true.
///
/// # Errors
/// [`RuntimeError`] when a client cannot be created or topics cannot be
/// created.
pub(super) async fn start(
    plan: Arc<Plan>,
    opts: &RunOptions,
    metrics: &Metrics,
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Start, RuntimeError> {
    let name = plan.name.clone();
    if plan.has_stream_joins() {
        return Err(RuntimeError::StreamJoinsUnsupported { pipeline: name });
    }
    let kerr = |op: &'static str| {
        let name = name.clone();
        move |source| RuntimeError::Kafka {
            pipeline: name,
            op,
            source,
        }
    };
    let counters = metrics.register_pipeline(&plan);
    health.set(&plan.name, false);

    let base = client::base(&opts.kafka);
    let (sources, table_partitions): (Vec<(String, i32)>, HashMap<String, i32>) = {
        let cfg = base.clone();
        let plan = Arc::clone(&plan);
        let (pipeline, stop) = (name.clone(), shutdown.clone());
        // Waits for the cluster as long as it takes (not ready meanwhile),
        // logging why it cannot be reached (wrong credentials, untrusted
        // certificate): the daemon keeps retrying instead of exiting.
        // A table topic is waited for too (logged once): T1 needs it read.
        let mut warned = false;
        let all = loop {
            let (cfg, pipeline, quit) = (cfg.clone(), pipeline.clone(), stop.clone());
            let all = tokio::task::spawn_blocking(move || {
                crate::kafka::admin::wait_topic_partitions(&cfg, &pipeline, || *quit.borrow())
            })
            .await
            .expect("metadata task does not panic")
            .map_err(|source| RuntimeError::Admin {
                pipeline: name.clone(),
                source,
            })?;
            let Some(all) = all else {
                // Shut down before the cluster answered.
                return Ok(Start::Stopped(counters.totals()));
            };
            let missing: Vec<&str> = plan
                .tables
                .iter()
                .filter(|t| !all.contains_key(&t.topic))
                .map(|t| t.topic.as_str())
                .collect();
            if missing.is_empty() {
                break all;
            }
            if !std::mem::replace(&mut warned, true) {
                tracing::warn!(pipeline = %name, topics = ?missing, "table topics do not exist yet; waiting for them (the tables are read before any record is joined)");
            }
            let mut stop = stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.changed() => return Ok(Start::Stopped(counters.totals())),
            }
        };
        let tables = all
            .iter()
            .filter(|(t, _)| plan.tables.iter().any(|d| d.topic == **t))
            .map(|(t, n)| (t.clone(), *n))
            .collect();
        let sources = all
            .into_iter()
            .filter(|(t, _)| plan.is_source_topic(t))
            .collect();
        (sources, tables)
    };
    let input_partitions = sources.iter().map(|(_, n)| *n).max().unwrap_or(1);
    let mut upstream_sources: Vec<String> = sources
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| format!("{t}/{p}")))
        .collect();
    upstream_sources.sort();
    ensure_topics(
        &base,
        &output_topics(&plan, input_partitions),
        Duration::from_secs(30),
    )
    .await
    .map_err(|source| RuntimeError::Admin {
        pipeline: name.clone(),
        source,
    })?;

    let clock = Arc::new(std::sync::atomic::AtomicI64::new(
        crate::kafka::sink::now_ms(),
    ));
    let failure: Failure = Arc::default();
    let eos = plan.delivery == crate::spec::Delivery::ExactlyOnce;
    let transactional_id = format!("{}.{}", plan.group_id, opts.instance);
    let mut producer_config = client::producer(&opts.kafka);
    if eos {
        client::transactional(&mut producer_config, &transactional_id);
    }
    let producer: BaseProducer<AckContext> = producer_config
        .create_with_context(AckContext {
            latency: metrics.latency(&plan.name),
            clock: Arc::clone(&clock),
            pipeline: name.clone(),
            failure: Arc::clone(&failure),
        })
        .map_err(kerr("create producer"))?;
    if eos {
        // Fences an earlier instance with the same transactional id and
        // aborts its open transaction.
        producer
            .init_transactions(Duration::from_secs(60))
            .map_err(kerr("init transactions"))?;
        producer
            .begin_transaction()
            .map_err(kerr("begin transaction"))?;
    }
    let state_producer: BaseProducer<StateContext> = client::producer(&opts.kafka)
        .create_with_context(StateContext {
            pipeline: name.clone(),
            failure: Arc::clone(&failure),
        })
        .map_err(kerr("create state producer"))?;
    let shared = Arc::new(Shared {
        plan: Arc::clone(&plan),
        metrics: metrics.clone(),
        health: Arc::clone(health),
        partitions: Mutex::new(Partitions::default()),
        producer,
        state_producer,
        clock,
        reader_config: base.clone(),
        commit_timeout: opts.commit_timeout,
        pending: Mutex::new(Vec::new()),
        has_pending: std::sync::atomic::AtomicBool::new(false),
        shutdown_deadline: std::sync::OnceLock::new(),
        counters,
        failure,
        brokers_down: std::sync::atomic::AtomicBool::new(false),
        upstream_sources,
        repartition_partitions: input_partitions,
        eos,
        transactional_id,
        tables: (!plan.tables.is_empty())
            .then(|| Mutex::new(TableCache::new(&plan, &table_partitions))),
    });
    let tables = load_tables(&shared, &base, &table_partitions).await?;
    let mut cfg = client::consumer(&opts.kafka, &plan.group_id, plan.start_from, &plan.consumer);
    cfg.set("statistics.interval.ms", "5000");
    if cfg.get("client.id").is_none_or(|c| c == "rdkafka") {
        // Names this instance in the group's member list (DescribeGroups,
        // `kafka-consumer-groups --describe --members`, the refusal of
        // `weir reset-offsets`): member ids start with the client id.
        cfg.set("client.id", format!("weir-{}", opts.instance));
    }
    if eos {
        cfg.set("isolation.level", "read_committed");
    }
    let consumer: StreamConsumer<WeirContext> = cfg
        .create_with_context(WeirContext {
            shared: Arc::downgrade(&shared),
            metrics: metrics.clone(),
            pipeline: name.clone(),
        })
        .map_err(kerr("create consumer"))?;
    let mut topics: Vec<&str> = match &plan.pattern {
        Some(p) => vec![p.as_str()],
        None => plan.topics.iter().map(String::as_str).collect(),
    };
    topics.extend(plan.repartition_topic());
    consumer.subscribe(&topics).map_err(kerr("subscribe"))?;
    tracing::info!(pipeline = %name, group = %plan.group_id, "pipeline started");
    Ok(Start::Running(shared, consumer, tables))
}

/// Reads every table of the pipeline to its end (T1) into the shared
/// cache, off the pipeline's task; its own record errors are queued to the
/// DLQ. `None` when the pipeline has no table.
///
/// # Errors
/// [`RuntimeError::Tables`] when a table topic is missing or cannot be
/// read to its end; [`RuntimeError::RecordFailed`] for a bad table record
/// under `errors.policy: fail`.
async fn load_tables(
    shared: &Arc<Shared>,
    base: &rdkafka::ClientConfig,
    partitions: &HashMap<String, i32>,
) -> Result<Option<TableReader>, RuntimeError> {
    let plan = Arc::clone(&shared.plan);
    if plan.tables.is_empty() {
        return Ok(None);
    }
    let terr = |source| RuntimeError::Tables {
        pipeline: plan.name.clone(),
        source: Box::new(source),
    };
    let mut reader = TableReader::open(base, &plan, partitions, shared.eos).map_err(terr)?;
    let sh = Arc::clone(shared);
    let (reader, out, loaded) = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut failed = Ok(());
        let loaded = reader.load(&sh.plan, Duration::from_secs(300), &mut |ev| {
            if failed.is_ok() {
                failed = super::table_events::apply(&sh, ev, &mut out);
            }
        });
        (reader, out, loaded.map(|()| failed))
    })
    .await
    .expect("table load task does not panic");
    let mut out = out;
    super::route::send_all(shared, &mut out);
    loaded.map_err(terr)??;
    if let Some(cache) = &shared.tables {
        let cache = super::shared::lock(cache);
        for (t, secs) in plan.tables.iter().zip(&reader.load_seconds) {
            let labels = [plan.name.as_str(), t.name.as_str()];
            shared
                .metrics
                .table_restore_seconds
                .with_label_values(&labels)
                .set(*secs);
            shared
                .metrics
                .table_entries
                .with_label_values(&labels)
                .set(cache.entries(&t.name) as i64);
            tracing::info!(pipeline = %plan.name, table = %t.name, topic = %t.topic, entries = cache.entries(&t.name), seconds = secs, "table read to its end");
        }
    }
    Ok(Some(reader))
}

/// Every topic the pipeline writes: sinks and DLQ (1 partition and the
/// broker's defaults when weir creates them), the compacted checkpoint
/// topic, the compacted changelogs and the repartition topic (no time
/// retention) with `input_partitions` partitions.
fn output_topics(plan: &Plan, input_partitions: i32) -> Vec<TopicSpec> {
    let compact = || {
        vec![
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            // An entry of an unconfirmed write must not displace the
            // confirmed one before the next owner overwrites it.
            ("min.compaction.lag.ms".to_owned(), "3600000".to_owned()),
        ]
    };
    let mut v: Vec<TopicSpec> = plan
        .output_topics()
        .into_iter()
        .filter(|t| *t != plan.checkpoint_topic)
        .map(|name| TopicSpec {
            name,
            partitions: 1,
            configs: vec![],
        })
        .collect();
    v.push(TopicSpec {
        name: plan.checkpoint_topic.clone(),
        partitions: 1,
        configs: compact(),
    });
    v.extend(plan.changelog_topics().into_iter().map(|name| TopicSpec {
        name,
        partitions: input_partitions,
        configs: compact(),
    }));
    v.extend(plan.repartition_topic().map(|name| TopicSpec {
        name: name.to_owned(),
        partitions: input_partitions,
        // Its records carry event time as their Kafka timestamp: with the
        // broker's time retention (7 days by default), a replay of older
        // history would be deleted before the downstream side read it (as
        // Kafka Streams, which creates repartition topics with
        // `retention.ms=-1`).
        configs: vec![("retention.ms".to_owned(), "-1".to_owned())],
    }));
    v
}
