//! The restore step fed one record at a time ([`Restorer`]): what
//! [`super::restore`] computes, in memory bounded by the number of distinct
//! changelog keys instead of the number of records read. The runtime hands
//! it the records it reads (borrowed from the consumer, no copy of a record
//! that a later one replaces); only the records that can still win are
//! kept, and only the winners are decoded, at [`Restorer::finish`].
//!
//! Which record of a key can still win depends on the threshold `T` (the
//! `seq` of the partition's checkpoint): the newest record with `seq ≤ T`.
//! At-least-once, `T` is known before the first record (the checkpoint
//! topic), so one record per key is kept. Exactly-once, `T` is the `seq` of
//! the marker the committed offset picks, known only at the end; a key then
//! keeps the newest record at or below the highest `seq` of the markers
//! picked so far (the *floor*) plus the newer ones above it, seqs strictly
//! rising (a newer record with a lower or equal `seq` makes an older one
//! lose at every threshold). Markers of committed writes come with rising
//! `seq`, so the floor is a lower bound of `T` and at most the writes since
//! the last marker are kept besides the winner. When the end shows `T` below
//! the floor (a log whose picked markers do not rise), the records must be
//! read again with `T` known: [`Outcome::ReadAgain`].

use super::{LogRecordRef, Restored};
use crate::state::codec::{self, Checkpoint};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hash (FxHash's, as rustc uses) for changelog keys,
/// several times cheaper than SipHash on these 40–100 byte keys. Its keys
/// come from weir's own changelog topic, written by weir, so flooding
/// resistance buys nothing here.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        let mut word = [0u8; 8];
        for c in &mut chunks {
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits: bring the
        // well-mixed high bits of the last multiply down.
        self.0.rotate_left(26)
    }
}

/// Changelog key → index of its [`Slot`].
type KeyIndex = HashMap<Box<[u8]>, u32, BuildHasherDefault<KeyHasher>>;

/// The restore of a set of assigned partitions, fed record by record.
#[derive(Debug)]
pub struct Restorer {
    /// Under exactly-once: the checkpoints come from the markers.
    eos: bool,
    /// The assigned sources, `topic/partition`, in order.
    sources: Vec<Source>,
    /// Index into `sources` by name.
    by_name: HashMap<String, usize>,
    /// Each changelog key's slot in `slots`.
    index: KeyIndex,
    /// What is kept of each changelog key (a separate vector keeps the
    /// hash table's buckets small).
    slots: Vec<Slot>,
}

/// What the end of a restore gives.
#[derive(Debug)]
pub enum Outcome {
    /// Each assigned partition's state, by source `topic/partition`.
    Restored(BTreeMap<String, Restored>),
    /// The picked markers' `seq` fell back below one passed earlier: feed
    /// every record again to this restorer (which knows each partition's
    /// checkpoint and so never asks again).
    ReadAgain(Restorer),
}

/// One assigned source partition.
#[derive(Debug)]
struct Source {
    name: String,
    /// At-least-once: from the checkpoint topic. Exactly-once: chosen at
    /// the end from `markers`.
    checkpoint: Option<Checkpoint>,
    /// Exactly-once: the committed offset, which picks the marker.
    committed: Option<i64>,
    /// The records of a key at or below this `seq` are replaced by a newer
    /// one at or below it; `None` before the first picked marker.
    floor: Option<u64>,
    /// `floor` is the threshold itself (at-least-once): records above it
    /// are never state, so they are not kept.
    settled: bool,
    /// Exactly-once: the last picked marker of each changelog partition.
    markers: Vec<((String, i32), Checkpoint)>,
}

/// One record's payload and write number.
#[derive(Debug)]
struct Version {
    seq: u64,
    /// `None`: a tombstone.
    payload: Option<Box<[u8]>>,
}

impl Version {
    fn new(seq: u64, payload: Option<&[u8]>) -> Self {
        Version {
            seq,
            payload: payload.map(Box::from),
        }
    }
}

/// What is kept of one changelog key.
#[derive(Debug, Default)]
struct Slot {
    /// Index of its source.
    source: u32,
    /// The highest `seq` of its records: above the threshold, the window
    /// is marked for a rewrite.
    max_seq: u64,
    /// The newest record at or below the source's floor (at the last
    /// record of this key).
    winner: Option<Version>,
    /// Newer records than `winner`, above that floor, `seq` strictly rising.
    above: Vec<Version>,
}

impl Slot {
    /// Moves the newest record of `above` at or below `floor` to `winner`.
    fn collapse(&mut self, floor: u64) {
        let n = self.above.partition_point(|v| v.seq <= floor);
        if n > 0 {
            self.winner = self.above.drain(..n).next_back();
        }
    }

    /// The record that is the state at threshold `t` (at or above the
    /// floor): the newest kept at or below it.
    fn at(&self, t: u64) -> Option<&Version> {
        self.above
            .iter()
            .rev()
            .find(|v| v.seq <= t)
            .or(self.winner.as_ref().filter(|w| w.seq <= t))
    }

    fn push(&mut self, seq: u64, payload: Option<&[u8]>, floor: Option<u64>, settled: bool) {
        self.max_seq = self.max_seq.max(seq);
        if let Some(f) = floor {
            self.collapse(f);
            if seq <= f {
                // Newer than everything kept and at or below the floor:
                // it wins at every threshold from the floor up.
                self.winner = Some(Version::new(seq, payload));
                self.above.clear();
                return;
            }
            if settled {
                return; // above the threshold: never state
            }
        }
        let keep = self.above.partition_point(|v| v.seq < seq);
        self.above.truncate(keep);
        self.above.push(Version::new(seq, payload));
    }
}

impl Restorer {
    /// A restore of the partitions of `assigned` (by source
    /// `topic/partition`, with its checkpoint from the checkpoint topic, if
    /// any). `committed`: under exactly-once, the committed offset of each
    /// source; the checkpoints then come from the markers.
    pub fn new(
        assigned: BTreeMap<String, Option<Checkpoint>>,
        committed: Option<&HashMap<String, i64>>,
    ) -> Self {
        let eos = committed.is_some();
        let sources: Vec<Source> = assigned
            .into_iter()
            .map(|(name, checkpoint)| {
                let checkpoint = if eos { None } else { checkpoint };
                Source {
                    committed: committed.and_then(|c| c.get(&name).copied()),
                    floor: (!eos).then(|| checkpoint.as_ref().map_or(0, |c| c.seq)),
                    settled: !eos,
                    checkpoint,
                    name,
                    markers: Vec::new(),
                }
            })
            .collect();
        let by_name = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Restorer {
            eos,
            sources,
            by_name,
            index: KeyIndex::default(),
            slots: Vec::new(),
        }
    }

    /// Changelog keys kept so far (memory is proportional to it).
    pub fn keys(&self) -> usize {
        self.slots.len()
    }

    /// Takes one record; records of one changelog partition must come in
    /// log order (partitions may interleave). Markers pick the checkpoint
    /// under exactly-once; records of other sources and keys that are not
    /// weir's are ignored.
    pub fn push(&mut self, r: LogRecordRef<'_>) {
        if r.key.starts_with(b"[\"marker\",") {
            if self.eos {
                self.marker(r);
            }
            return;
        }
        let Some(source) = codec::entry_source(r.key) else {
            return; // not weir's
        };
        let Some(&i) = self.by_name.get(&*source) else {
            return; // another input topic sharing this changelog partition
        };
        let s = &self.sources[i];
        let (floor, settled) = (s.floor, s.settled);
        let slot = match self.index.get(r.key) {
            Some(&k) => &mut self.slots[k as usize],
            None => {
                // More than u32::MAX keys would not fit in memory anyway.
                self.index.insert(r.key.into(), self.slots.len() as u32);
                self.slots.push(Slot {
                    source: i as u32,
                    ..Slot::default()
                });
                let last = self.slots.len() - 1;
                &mut self.slots[last]
            }
        };
        slot.push(r.seq, r.payload, floor, settled);
    }

    /// A marker under exactly-once: picked when at or before the committed
    /// offset (or when there is none); it raises its source's floor.
    fn marker(&mut self, r: LogRecordRef<'_>) {
        let Some(source) = codec::parse_marker_key(r.key) else {
            return;
        };
        let Some(Ok(cp)) = r.payload.map(codec::decode_checkpoint) else {
            return;
        };
        let Some(&i) = self.by_name.get(&source) else {
            return;
        };
        let s = &mut self.sources[i];
        if s.committed.is_some_and(|c| cp.offset > c) {
            return;
        }
        s.floor = Some(s.floor.map_or(cp.seq, |f| f.max(cp.seq)));
        match s
            .markers
            .iter_mut()
            .find(|((t, p), _)| t == r.topic && *p == r.partition)
        {
            Some((_, m)) => *m = cp,
            None => s.markers.push(((r.topic.to_owned(), r.partition), cp)),
        }
    }

    /// The state of every assigned partition. Under exactly-once a
    /// partition resumes at the last picked marker of the changelog
    /// partition that sorts last (topic, then partition) among those with
    /// one: every window stage's changelog gets the same markers, so any
    /// of them says the same. See [`Outcome`] for when the records must be
    /// read again.
    pub fn finish(mut self) -> Outcome {
        if self.eos {
            for s in &mut self.sources {
                s.markers.sort_by(|a, b| a.0.cmp(&b.0));
                s.checkpoint = s.markers.last().map(|(_, cp)| cp.clone());
            }
            let fell_back = self.sources.iter().any(|s| {
                s.floor
                    .is_some_and(|f| s.checkpoint.as_ref().map_or(0, |c| c.seq) < f)
            });
            if fell_back {
                let assigned = self
                    .sources
                    .into_iter()
                    .map(|s| (s.name, s.checkpoint))
                    .collect();
                return Outcome::ReadAgain(Restorer::new(assigned, None));
            }
        }
        let thresholds: Vec<u64> = self
            .sources
            .iter()
            .map(|s| s.checkpoint.as_ref().map_or(0, |c| c.seq))
            .collect();
        let mut keys: Vec<(Box<[u8]>, u32)> = self.index.into_iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<Restored> = self
            .sources
            .iter()
            .map(|s| Restored {
                checkpoint: s.checkpoint.clone(),
                ..Default::default()
            })
            .collect();
        let mut slots = self.slots;
        sort_like(&mut slots, &mut keys);
        for (r, p) in out
            .iter_mut()
            .zip(decode(&mut keys, &mut slots, &thresholds))
        {
            r.windows = p.windows;
            r.unreadable = p.unreadable;
            r.unconfirmed = p.unconfirmed;
        }
        Outcome::Restored(
            self.sources
                .into_iter()
                .zip(out)
                .map(|(s, r)| (s.name, r))
                .collect(),
        )
    }
}

/// Puts `slots` in the order of `keys` (sorted keys, each with the index
/// of its slot): in place, following the permutation's cycles, so no
/// second vector of slots is needed. The indices are used up. (Decoding
/// stays on the calling thread, the pipeline's: spread over the cores it
/// would take them from the other pipelines and `/healthz`.)
fn sort_like(slots: &mut [Slot], keys: &mut [(Box<[u8]>, u32)]) {
    const DONE: u32 = u32::MAX;
    for start in 0..keys.len() {
        if keys[start].1 == DONE {
            continue;
        }
        let first = std::mem::take(&mut slots[start]);
        let mut at = start;
        loop {
            let from = std::mem::replace(&mut keys[at].1, DONE) as usize;
            if from == start {
                slots[at] = first;
                break;
            }
            slots[at] = std::mem::take(&mut slots[from]);
            at = from;
        }
    }
}

/// The state of `keys` (sorted) with their `slots` (in the same order),
/// per source (index into `thresholds`, each source's threshold `seq`):
/// the record each keeps at its threshold decoded into a window (or an
/// unreadable entry), and a mark for every key with a record above it.
/// Each key and slot is taken out as it is decoded, so its bytes are freed
/// while the windows are made.
fn decode(keys: &mut [(Box<[u8]>, u32)], slots: &mut [Slot], thresholds: &[u64]) -> Vec<Restored> {
    let mut out: Vec<Restored> = thresholds.iter().map(|_| Restored::default()).collect();
    for (key, slot) in keys.iter_mut().zip(slots) {
        let (key, slot) = (std::mem::take(&mut key.0), std::mem::take(slot));
        let Some(k) = codec::parse_entry_key(&key) else {
            continue;
        };
        let t = thresholds[slot.source as usize];
        let r = &mut out[slot.source as usize];
        if let Some(v) = slot.at(t).and_then(|v| v.payload.as_deref()) {
            match codec::decode_entry(v) {
                Ok(e) => r.windows.push((k.stage, e)),
                Err(e) => r
                    .unreadable
                    .push((k.stage, format!("window {}: {e}", k.key))),
            }
        }
        if slot.max_seq > t {
            r.unconfirmed.push((k.stage, k.key, k.start));
        }
    }
    out
}
