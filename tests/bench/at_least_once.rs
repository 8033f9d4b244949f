//! The at-least-once consume → produce loop that contenders (1) and (2)
//! share, and the bench's side of running one as its own process.
//!
//! The loop (in the contender process): a `BaseConsumer` with auto commit
//! every 1 s but `enable.auto.offset.store=false`, a `BaseProducer` polled by
//! the same thread. Each consumed message is mapped by the role's function;
//! an output goes to the output topic with the same key and the input
//! `(partition, offset)` as delivery opaque. An offset is stored only once it
//! and every earlier offset of its partition is done (output acknowledged, or
//! no output), so the auto commit never passes an unacknowledged record —
//! the same contract as weir's. Client settings are weir's defaults
//! (`src/kafka/client.rs`).
//!
//! When every input record has been read and every output acknowledged, the
//! process prints one JSON line (its own steady-state timing: first message
//! consumed → done) and waits for its stdin to close; then it stores and
//! commits its offsets and leaves the group. The bench reads its CPU time and
//! peak RSS from `/proc` in between.

use crate::measure::{
    cpu_seconds, peak_rss_kib, thread_summary, LoadMeter, Measurement, Proc, RunEnv,
};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::Command;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A role's per-record work: the output payload for an input payload (which
/// it may return as is, or write into the scratch buffer), or `None` to
/// drop the record.
pub type MapFn = for<'a> fn(&'a [u8], &'a mut Vec<u8>) -> Option<&'a [u8]>;

/// Where a contender process reads and writes.
#[derive(Debug, Clone)]
pub struct RoleArgs {
    /// Broker.
    pub bootstrap: String,
    /// Input topic.
    pub input: String,
    /// Output topic.
    pub output: String,
    /// Consumer group.
    pub group: String,
    /// Input records to read before it is done.
    pub records: u64,
}

impl RoleArgs {
    /// Parses `--key=value` arguments.
    pub fn parse(args: &[String]) -> Result<RoleArgs, String> {
        let get = |k: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(&format!("--{k}=")))
                .map(str::to_owned)
                .ok_or_else(|| format!("missing --{k}="))
        };
        Ok(RoleArgs {
            bootstrap: get("bootstrap")?,
            input: get("input")?,
            output: get("output")?,
            group: get("group")?,
            records: get("records")?
                .parse()
                .map_err(|e| format!("--records: {e}"))?,
        })
    }

    /// The arguments that [`RoleArgs::parse`] reads, for role `role`.
    fn to_args(&self, role: &str) -> Vec<String> {
        vec![
            format!("--role={role}"),
            format!("--bootstrap={}", self.bootstrap),
            format!("--input={}", self.input),
            format!("--output={}", self.output),
            format!("--group={}", self.group),
            format!("--records={}", self.records),
        ]
    }
}

/// Entry point of a contender process (`--role=NAME …`); the exit code.
pub fn role_main(role: &str, args: &[String]) -> i32 {
    let map: MapFn = match role {
        "raw" => crate::raw::map,
        "handwritten" => crate::handwritten::map,
        // Not a map over records: a loop of its own.
        "window" => return crate::window_ceiling::role_main(args),
        other => {
            eprintln!("bench: unknown role {other:?}");
            return 2;
        }
    };
    match RoleArgs::parse(args).and_then(|a| run_loop(&a, role, map)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench role {role}: {e}");
            1
        }
    }
}

/// Consumer settings: weir's consumer defaults, but with the auto commit
/// doing the committing (of explicitly stored offsets only).
pub fn consumer_config(a: &RoleArgs) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &a.bootstrap)
        .set("group.id", &a.group)
        .set("session.timeout.ms", crate::broker::SESSION_TIMEOUT_MS)
        .set("fetch.queue.backoff.ms", "10")
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false");
    c
}

/// Producer settings: weir's producer defaults.
pub fn producer_config(a: &RoleArgs) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &a.bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "0")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.messages", "1000000");
    c
}

/// Done/not-done flags of one input partition's offsets in flight.
#[derive(Default)]
struct PartitionProgress {
    /// Offset of `done[0]`; everything before it is done.
    base: i64,
    done: VecDeque<bool>,
    /// One past the highest offset ever consumed (to count distinct records).
    next_new: i64,
    /// `base` moved since the last store.
    moved: bool,
}

/// Per input partition, which consumed offsets are done; the store-able
/// offset of a partition is the end of its done prefix.
#[derive(Default)]
struct Progress {
    parts: Vec<PartitionProgress>,
    acked: u64,
    failed: Vec<String>,
}

impl Progress {
    fn part(&mut self, p: i32) -> &mut PartitionProgress {
        let i = p as usize;
        if self.parts.len() <= i {
            self.parts.resize_with(i + 1, Default::default);
        }
        &mut self.parts[i]
    }

    /// Registers consumed offset `o` of partition `p`, not done yet; true
    /// when it was never consumed before.
    fn begin(&mut self, p: i32, o: i64) -> bool {
        let pp = self.part(p);
        let end = pp.base + pp.done.len() as i64;
        if pp.done.is_empty() || o < end {
            // Nothing in flight, or a replay after a rebalance: start over
            // from here (acks of the abandoned offsets are ignored below).
            pp.done.clear();
            pp.base = o;
        } else {
            // Offsets skipped by the broker (none expected) count as done.
            pp.done
                .extend(std::iter::repeat_n(true, (o - end) as usize));
        }
        pp.done.push_back(false);
        let fresh = o >= pp.next_new;
        pp.next_new = pp.next_new.max(o + 1);
        fresh
    }

    /// Marks offset `o` of partition `p` done.
    fn done(&mut self, p: i32, o: i64) {
        let pp = self.part(p);
        let Ok(i) = usize::try_from(o - pp.base) else {
            return;
        };
        let Some(flag) = pp.done.get_mut(i) else {
            return;
        };
        *flag = true;
        while pp.done.front() == Some(&true) {
            pp.done.pop_front();
            pp.base += 1;
            pp.moved = true;
        }
    }

    /// Partitions whose done prefix moved since the last call, with the
    /// last done offset of each.
    fn take_moved(&mut self, out: &mut Vec<(i32, i64)>) {
        for (p, pp) in self.parts.iter_mut().enumerate() {
            if std::mem::take(&mut pp.moved) {
                out.push((p as i32, pp.base - 1));
            }
        }
    }
}

/// Delivery opaque: input partition and offset in one word.
fn opaque(p: i32, o: i64) -> usize {
    ((p as usize) << 48) | (o as usize & ((1 << 48) - 1))
}

fn from_opaque(x: usize) -> (i32, i64) {
    ((x >> 48) as i32, (x & ((1 << 48) - 1)) as i64)
}

/// Producer context: delivery reports mark input offsets done. Only the
/// loop's thread polls the producer, so the lock is never contended.
#[derive(Default)]
struct Acks {
    progress: Mutex<Progress>,
}

impl Acks {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, x: usize) {
        let (p, o) = from_opaque(x);
        let mut g = self.progress();
        match r {
            Ok(_) => {
                g.acked += 1;
                g.done(p, o);
            }
            Err((e, _)) => g.failed.push(format!("input {p}@{o}: {e}")),
        }
    }
}

/// Stores the offsets of every partition whose done prefix moved.
fn store_moved(consumer: &BaseConsumer, acks: &Acks, topic: &str, buf: &mut Vec<(i32, i64)>) {
    acks.progress().take_moved(buf);
    for (p, last_done) in buf.drain(..) {
        // Fails only for a partition no longer assigned: nothing to do.
        let _ = consumer.store_offset(topic, p, last_done);
    }
}

/// The loop; prints the result line, then waits for stdin to close.
fn run_loop(a: &RoleArgs, role: &str, map: MapFn) -> Result<(), String> {
    let started = Instant::now();
    let consumer: BaseConsumer = consumer_config(a)
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    consumer
        .subscribe(&[&a.input])
        .map_err(|e| format!("subscribe: {e}"))?;
    let producer: BaseProducer<Acks> = producer_config(a)
        .create_with_context(Acks::default())
        .map_err(|e| format!("producer: {e}"))?;
    let acks = producer.context().clone();
    let mut scratch = Vec::with_capacity(512);
    let mut stores = Vec::new();
    let mut first: Option<Instant> = None;
    let (mut distinct, mut consumed, mut produced) = (0u64, 0u64, 0u64);
    while distinct < a.records {
        let m = match consumer.poll(Duration::from_millis(100)) {
            None => {
                producer.poll(Duration::ZERO);
                store_moved(&consumer, &acks, &a.input, &mut stores);
                continue;
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            Some(Ok(m)) => m,
        };
        first.get_or_insert_with(Instant::now);
        consumed += 1;
        let (p, o) = (m.partition(), m.offset());
        if acks.progress().begin(p, o) {
            distinct += 1;
        }
        match map(m.payload().unwrap_or_default(), &mut scratch) {
            Some(out) => {
                let mut rec =
                    BaseRecord::<[u8], [u8], usize>::with_opaque_to(&a.output, opaque(p, o))
                        .payload(out);
                if let Some(k) = m.key() {
                    rec = rec.key(k);
                }
                loop {
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((e, back))
                            if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                        {
                            producer.poll(Duration::from_millis(1));
                            rec = back;
                        }
                        Err((e, _)) => return Err(format!("produce: {e}")),
                    }
                }
                produced += 1;
            }
            None => acks.progress().done(p, o),
        }
        if consumed % 64 == 0 {
            producer.poll(Duration::ZERO);
            store_moved(&consumer, &acks, &a.input, &mut stores);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| format!("flush: {e}"))?;
    let done = Instant::now();
    store_moved(&consumer, &acks, &a.input, &mut stores);
    let (acked, failed) = {
        let g = acks.progress();
        (g.acked, g.failed.clone())
    };
    if !failed.is_empty() || acked != produced {
        return Err(format!(
            "{acked} of {produced} outputs acknowledged; failures: {:?}",
            &failed[..failed.len().min(5)]
        ));
    }
    let first = first.unwrap_or(done);
    let line = json!({
        "role": role,
        "records_in": distinct,
        "consumed": consumed,
        "records_out": produced,
        "startup_s": (first - started).as_secs_f64(),
        "steady_s": (done - first).as_secs_f64(),
    });
    println!("{line}");
    // Until the bench has read /proc and closes stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    store_moved(&consumer, &acks, &a.input, &mut stores);
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    Ok(())
}

/// Runs role `role` as a process of its own (this binary, re-executed) and
/// measures it: its own steady-state timing, then CPU time and peak RSS from
/// `/proc` once it is done, before it is told to stop.
pub fn measure_role(
    env: &RunEnv,
    role: &str,
    group: &str,
    output: &str,
) -> Result<Measurement, String> {
    let args = RoleArgs {
        bootstrap: env.bootstrap.clone(),
        input: env.input.clone(),
        output: output.to_owned(),
        group: group.to_owned(),
        records: env.records,
    };
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(args.to_args(role));
    measure_command(env, role, cmd)
}

/// Runs `cmd` (a process that speaks the roles' protocol: one JSON result
/// line with `role`, `records_in`, `consumed`, `records_out`, `startup_s`,
/// `steady_s` on stdout when done, then it waits for stdin to close, stops
/// and exits) and measures it: its own steady-state timing, then CPU time
/// and peak RSS from `/proc` once it is done, before it is told to stop.
/// `name` names its log files.
pub fn measure_command(env: &RunEnv, name: &str, cmd: Command) -> Result<Measurement, String> {
    let role = name;
    let meter = LoadMeter::start(env.broker_pid);
    let mut proc = Proc::spawn(cmd, &env.dir, role, true)?;
    let stdout = proc.child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let timeout = env.timeout;
    let deadline = Instant::now() + timeout;
    let result: Value = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => match serde_json::from_str::<Value>(&line) {
                Ok(v) if v.get("role").is_some() => break v,
                _ => continue,
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                proc.check_alive()?;
                if Instant::now() > deadline {
                    return Err(format!(
                        "{role}: no result within {timeout:?}; stderr tail:\n{}",
                        proc.stderr_tail(20)
                    ));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                proc.check_alive()?;
                return Err(format!("{role}: stdout closed without a result"));
            }
        }
    };
    let pid = proc.pid();
    let cpu = cpu_seconds(pid).ok_or("cannot read /proc/<pid>/stat")?;
    let rss = peak_rss_kib(pid).ok_or("cannot read /proc/<pid>/status")?;
    let threads = thread_summary(pid);
    let load = meter.stop();
    drop(proc.child.stdin.take());
    let exit = proc.stop(false, Duration::from_secs(150));
    let num = |k: &str| result.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let mut notes = vec![threads];
    let stderr = std::fs::read_to_string(&proc.stderr).unwrap_or_default();
    if !stderr.trim().is_empty() {
        notes.push(format!(
            "stderr: {} lines, first: {}",
            stderr.lines().count(),
            stderr.lines().next().unwrap_or("")
        ));
    }
    if num("late") > 0.0 {
        notes.push(format!(
            "{} records dropped as late (its own count)",
            num("late")
        ));
    }
    if num("consumed") != num("records_in") {
        notes.push(format!(
            "consumed {} messages for {} distinct offsets (replays)",
            num("consumed"),
            num("records_in")
        ));
    }
    Ok(Measurement {
        records_in: num("records_in") as u64,
        records_out: num("records_out") as u64,
        steady_records: num("records_in") as u64,
        steady_seconds: num("steady_s"),
        startup_seconds: num("startup_s"),
        cpu_seconds: cpu,
        peak_rss_kib: rss,
        load,
        exit,
        notes,
    })
}
