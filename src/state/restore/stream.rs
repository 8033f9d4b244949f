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

/// The restore of a set of assigned partitions, fed record by record.
#[derive(Debug)]
pub struct Restorer {
    /// Under exactly-once: the checkpoints come from the markers.
    eos: bool,
    /// The assigned sources, `topic/partition`, in order.
    sources: Vec<Source>,
    /// Index into `sources` by name.
    by_name: HashMap<String, usize>,
    /// What is kept of each changelog key.
    keys: HashMap<Box<[u8]>, Slot>,
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
#[derive(Debug)]
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
            keys: HashMap::new(),
        }
    }

    /// Changelog keys kept so far (memory is proportional to it).
    pub fn keys(&self) -> usize {
        self.keys.len()
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
        match self.keys.get_mut(r.key) {
            Some(slot) => slot.push(r.seq, r.payload, floor, settled),
            None => {
                let mut slot = Slot {
                    source: i as u32,
                    max_seq: 0,
                    winner: None,
                    above: Vec::new(),
                };
                slot.push(r.seq, r.payload, floor, settled);
                self.keys.insert(r.key.into(), slot);
            }
        }
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
        let mut out: Vec<Restored> = self
            .sources
            .iter()
            .map(|s| Restored {
                checkpoint: s.checkpoint.clone(),
                ..Default::default()
            })
            .collect();
        let thresholds: Vec<u64> = self
            .sources
            .iter()
            .map(|s| s.checkpoint.as_ref().map_or(0, |c| c.seq))
            .collect();
        let mut keys: Vec<(Box<[u8]>, Slot)> = self.keys.into_iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, mut slot) in keys {
            let Some(k) = codec::parse_entry_key(&key) else {
                continue;
            };
            let t = thresholds[slot.source as usize];
            let r = &mut out[slot.source as usize];
            slot.collapse(t);
            if let Some(Version {
                payload: Some(v), ..
            }) = slot.winner.filter(|w| w.seq <= t)
            {
                match codec::decode_entry(&v) {
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
        Outcome::Restored(
            self.sources
                .into_iter()
                .zip(out)
                .map(|(s, r)| (s.name, r))
                .collect(),
        )
    }
}
