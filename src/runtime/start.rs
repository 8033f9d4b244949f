//! Starting a pipeline: wait for the cluster and the source topics, create
//! the internal topics, the producers (transactional under exactly-once)
//! and the consumer, and subscribe.

use super::partitions::Partitions;
use super::pipeline::{RunOptions, RuntimeError, Summary};
use super::rebalance::WeirContext;
use super::shared::Shared;
use crate::http::Health;
use crate::kafka::admin::{ensure_topics, TopicSpec};
use crate::kafka::client;
use crate::kafka::sink::{AckContext, Failure, StateContext};
use crate::metrics::Metrics;
use crate::plan::Plan;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseProducer, Producer};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What [`start`] gives.
pub(super) enum Start {
    /// Subscribed: the shared state and the consumer.
    Running(Arc<Shared>, StreamConsumer<WeirContext>),
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
    if plan.has_table_joins() {
        return Err(RuntimeError::TablesUnsupported { pipeline: name });
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
    let sources: Vec<(String, i32)> = {
        let cfg = base.clone();
        let plan = Arc::clone(&plan);
        let (pipeline, stop) = (name.clone(), shutdown.clone());
        // Waits for the cluster as long as it takes (not ready meanwhile),
        // logging why it cannot be reached (wrong credentials, untrusted
        // certificate): the daemon keeps retrying instead of exiting.
        let all = tokio::task::spawn_blocking(move || {
            crate::kafka::admin::wait_topic_partitions(&cfg, &pipeline, || *stop.borrow())
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
        all.into_iter()
            .filter(|(t, _)| plan.is_source_topic(t))
            .collect()
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
    });
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
    Ok(Start::Running(shared, consumer))
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
