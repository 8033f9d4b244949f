//! Contender (14): the hand-written window ceiling for (5) and (6). One
//! process, one `BaseConsumer` over the 8 input partitions, serde_json
//! parse of `page`, `ts` and `price` only (a typed struct, the other fields
//! skipped), per-page 1-minute tumbling `views` (count) and `revenue`
//! (sum of `price`) in memory, results produced as weir writes them:
//! `{"key", "window": {"start", "end"}, "views", "revenue"}` with the page
//! as Kafka key and `end − 1` as timestamp.
//!
//! The watermark is weir's rule: per input partition the highest event
//! time seen minus 2 s, the minimum over the partitions (none before every
//! partition has a record); a window closes, and its result goes out, when
//! the watermark reaches its end; a record for a closed window is late and
//! dropped (counted; the bench's input has none). No repartition, no
//! changelog, no checkpoint: the state is lost on a restart, which is why
//! this is a ceiling and not a job weir could run. Windows still open when
//! the input ends stay open (as in weir's run).
//!
//! Timing, as weir's (5) is measured: from the first message consumed to
//! every input record in (results handed to the producer as windows
//! close); then the producer is flushed and every result must be
//! acknowledged before the result line is printed. Offsets are committed
//! (the consumer's position) when stdin closes, so that the bench's offset
//! check holds; nothing is committed while it runs.

use crate::at_least_once::RoleArgs;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Window size, ms.
const SIZE_MS: i64 = 60_000;
/// Watermark bound, ms (`max_out_of_orderness: 2s`).
const OUT_OF_ORDER_MS: i64 = 2_000;

/// The fields read from an input record.
#[derive(Deserialize)]
struct View<'a> {
    #[serde(borrow)]
    page: Cow<'a, str>,
    ts: i64,
    price: f64,
}

#[derive(Serialize)]
struct Span {
    start: i64,
    end: i64,
}

/// One window result, in weir's format.
#[derive(Serialize)]
struct WindowResult<'a> {
    key: &'a str,
    window: Span,
    views: u64,
    revenue: f64,
}

/// Delivery reports: acknowledged and failed results.
#[derive(Default)]
struct Acks {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Open windows: by start, then by page, `(views, revenue)`.
#[derive(Default)]
struct Windows {
    open: BTreeMap<i64, HashMap<String, (u64, f64)>>,
    /// Highest event time per input partition.
    max_ts: Vec<i64>,
    /// `min(max_ts) − bound`; `i64::MIN` until every partition has a record.
    watermark: i64,
    late: u64,
}

impl Windows {
    fn new(partitions: usize) -> Windows {
        Windows {
            open: BTreeMap::new(),
            max_ts: vec![i64::MIN; partitions],
            watermark: i64::MIN,
            late: 0,
        }
    }

    /// Adds one record; true when the watermark moved.
    fn add(&mut self, partition: usize, v: &View<'_>) -> bool {
        let start = v.ts - v.ts.rem_euclid(SIZE_MS);
        if start + SIZE_MS <= self.watermark {
            self.late += 1;
        } else {
            let pages = self.open.entry(start).or_default();
            let w = match pages.get_mut(&*v.page) {
                Some(w) => w,
                None => pages.entry(v.page.clone().into_owned()).or_default(),
            };
            w.0 += 1;
            w.1 += v.price;
        }
        let Some(m) = self.max_ts.get_mut(partition) else {
            return false;
        };
        if v.ts <= *m {
            return false;
        }
        *m = v.ts;
        let min = self.max_ts.iter().copied().min().unwrap_or(i64::MIN);
        let wm = if min == i64::MIN {
            i64::MIN
        } else {
            min - OUT_OF_ORDER_MS
        };
        let moved = wm > self.watermark;
        self.watermark = self.watermark.max(wm);
        moved
    }

    /// Hands every window whose end the watermark reached to `emit`.
    fn close(&mut self, mut emit: impl FnMut(i64, &str, u64, f64)) {
        while let Some(entry) = self.open.first_entry() {
            let start = *entry.key();
            if start + SIZE_MS > self.watermark {
                break;
            }
            for (page, (views, revenue)) in entry.remove() {
                emit(start, &page, views, revenue);
            }
        }
    }
}

/// The role `window`: runs until every input record is in, prints the
/// result line, waits for stdin to close, commits and leaves.
pub fn role_main(args: &[String]) -> i32 {
    match RoleArgs::parse(args).and_then(|a| run(&a)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench role window: {e}");
            1
        }
    }
}

fn run(a: &RoleArgs) -> Result<(), String> {
    let started = Instant::now();
    let mut cc = crate::at_least_once::consumer_config(a);
    cc.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "true");
    let consumer: BaseConsumer = cc.create().map_err(|e| format!("consumer: {e}"))?;
    consumer
        .subscribe(&[&a.input])
        .map_err(|e| format!("subscribe: {e}"))?;
    let producer: BaseProducer<Acks> = crate::at_least_once::producer_config(a)
        .create_with_context(Acks::default())
        .map_err(|e| format!("producer: {e}"))?;
    let mut windows = Windows::new(crate::data::PARTITIONS as usize);
    let mut next_new: Vec<i64> = vec![0; crate::data::PARTITIONS as usize];
    let mut scratch = Vec::with_capacity(256);
    let mut first: Option<Instant> = None;
    let (mut distinct, mut consumed, mut produced, mut unreadable) = (0u64, 0u64, 0u64, 0u64);
    let mut send_err: Option<String> = None;
    while distinct < a.records {
        let m = match consumer.poll(Duration::from_millis(100)) {
            None => {
                producer.poll(Duration::ZERO);
                continue;
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            Some(Ok(m)) => m,
        };
        first.get_or_insert_with(Instant::now);
        consumed += 1;
        let p = m.partition() as usize;
        if let Some(n) = next_new.get_mut(p) {
            if m.offset() >= *n {
                *n = m.offset() + 1;
                distinct += 1;
            }
        }
        let Ok(v) = serde_json::from_slice::<View<'_>>(m.payload().unwrap_or_default()) else {
            unreadable += 1;
            continue;
        };
        if windows.add(p, &v) {
            windows.close(|start, page, views, revenue| {
                let r = WindowResult {
                    key: page,
                    window: Span {
                        start,
                        end: start + SIZE_MS,
                    },
                    views,
                    revenue,
                };
                scratch.clear();
                serde_json::to_writer(&mut scratch, &r).expect("JSON of a result");
                let mut rec = BaseRecord::to(&a.output)
                    .key(page)
                    .payload(&scratch)
                    .timestamp(start + SIZE_MS - 1);
                loop {
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((e, back))
                            if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                        {
                            producer.poll(Duration::from_millis(1));
                            rec = back;
                        }
                        Err((e, _)) => {
                            send_err.get_or_insert_with(|| format!("produce: {e}"));
                            break;
                        }
                    }
                }
                produced += 1;
            });
            if let Some(e) = send_err.take() {
                return Err(e);
            }
        }
        if consumed % 64 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    let done = Instant::now();
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| format!("flush: {e}"))?;
    let t = producer.context();
    let (acked, failed) = (
        t.ok.load(Ordering::Relaxed),
        t.failed.load(Ordering::Relaxed),
    );
    if failed > 0 || acked != produced {
        return Err(format!(
            "{acked} of {produced} results acknowledged, {failed} failed"
        ));
    }
    let first = first.unwrap_or(done);
    let line = serde_json::json!({
        "role": "window",
        "records_in": distinct,
        "consumed": consumed,
        "records_out": produced,
        "late": windows.late,
        "unreadable": unreadable,
        "open_windows": windows.open.values().map(HashMap::len).sum::<usize>(),
        "startup_s": (first - started).as_secs_f64(),
        "steady_s": (done - first).as_secs_f64(),
    });
    println!("{line}");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .map_err(|e| format!("commit: {e}"))?;
    Ok(())
}
