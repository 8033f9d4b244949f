//! The open windows of one window operator: a slab of windows under
//! numeric slot ids, each key's windows by start in the [`KeyTable`] (so a
//! record finds its window with one hash of its key and a look at the
//! key's last window, and a key's sessions are a sorted list), and the
//! [`CloseIndex`] by close time. Changes for the changelog are tracked as
//! a list of dirty slots and a list of removed `(key, start)` pairs, so a
//! commit visits changed windows only.

use super::aggregate::AggState;
use super::index::CloseIndex;
use super::keys::{KeyId, KeyTable};

/// One open window.
#[derive(Debug, Clone)]
pub struct OpenWindow {
    /// Its key in the [`KeyTable`].
    pub key: KeyId,
    /// Changed since its last early result (`emit: {every}`).
    pub changed: bool,
    /// Changed since the last changelog write (listed in [`Store::dirty`]).
    pub dirty: bool,
    /// Has an entry in the changelog (a removal needs a tombstone).
    pub persisted: bool,
    /// Start, ms (inclusive).
    pub start: i64,
    /// End, ms (exclusive).
    pub end: i64,
    /// One state per aggregate, in the stage's order.
    pub aggs: Box<[AggState]>,
}

/// The open windows, their indexes and their changes.
#[derive(Debug, Clone)]
pub struct Store {
    /// The keys, each with its windows.
    pub keys: KeyTable,
    slots: Vec<Option<OpenWindow>>,
    free: Vec<u32>,
    closing: CloseIndex,
    allowed_lateness: i64,
    open: usize,
    /// Slots made dirty since the last changelog write; may repeat, and may
    /// name a slot closed (or reused) since: a window is changed when it is
    /// open and its `dirty` flag is set.
    pub dirty: Vec<u32>,
    /// Persisted windows removed since the last changelog write, as
    /// `(key, start)`; each holds its key in the table
    /// ([`KeyTable::hold`]).
    pub removed: Vec<(KeyId, i64)>,
}

impl Store {
    /// No windows; `aligned` picks the close index for aligned windows
    /// (else sessions), closing at `end + allowed_lateness`.
    pub fn new(aligned: bool, allowed_lateness: i64) -> Self {
        Store {
            keys: KeyTable::default(),
            slots: Vec::new(),
            free: Vec::new(),
            closing: CloseIndex::new(aligned),
            allowed_lateness,
            open: 0,
            dirty: Vec::new(),
            removed: Vec::new(),
        }
    }

    fn closes_at(&self, end: i64) -> i64 {
        end.saturating_add(self.allowed_lateness)
    }

    /// Number of open windows.
    pub fn open(&self) -> usize {
        self.open
    }

    /// The slot of key `key`'s window starting at `start`.
    pub fn find(&self, key: KeyId, start: i64) -> Option<u32> {
        let ws = self.keys.windows(key);
        match ws.last() {
            Some(&(s, slot)) if s == start => Some(slot),
            Some(&(s, _)) if s < start => None,
            _ => ws
                .binary_search_by_key(&start, |(s, _)| *s)
                .ok()
                .map(|i| ws[i].1),
        }
    }

    /// The open window in `slot`.
    ///
    /// # Panics
    /// When the slot holds no window.
    pub fn get(&self, slot: u32) -> &OpenWindow {
        self.slots[slot as usize].as_ref().expect("an open window")
    }

    /// The open window in `slot`, to change.
    ///
    /// # Panics
    /// When the slot holds no window.
    pub fn get_mut(&mut self, slot: u32) -> &mut OpenWindow {
        self.slots[slot as usize].as_mut().expect("an open window")
    }

    /// The window in `slot`, if open, to change.
    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut OpenWindow> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Every open window with its slot, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &OpenWindow)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.as_ref().map(|w| (i as u32, w)))
    }

    /// Flags the window in `slot` as changed since the last changelog write.
    pub fn mark_dirty(&mut self, slot: u32) {
        let w = self.get_mut(slot);
        if !w.dirty {
            w.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Stores a new window (its key must have none at its start), indexes it
    /// and returns its slot.
    pub fn insert(&mut self, w: OpenWindow) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 windows")
            }
        };
        let ws = self.keys.windows_mut(w.key);
        match ws.last() {
            Some(&(s, _)) if s >= w.start => {
                let i = ws.partition_point(|(s, _)| *s < w.start);
                ws.insert(i, (w.start, slot));
            }
            Some(_) => ws.push((w.start, slot)),
            // Most keys have one window at a time: room for one, not four.
            None => {
                ws.reserve_exact(1);
                ws.push((w.start, slot));
            }
        }
        self.closing.insert(self.closes_at(w.end), slot);
        if w.dirty {
            self.dirty.push(slot);
        }
        self.slots[slot as usize] = Some(w);
        self.open += 1;
        slot
    }

    /// Moves the window in `slot` to end at `end`.
    pub fn set_end(&mut self, slot: u32, end: i64) {
        let old = self.get(slot).end;
        if old != end {
            self.closing.remove(self.closes_at(old), slot);
            self.closing.insert(self.closes_at(end), slot);
            self.get_mut(slot).end = end;
        }
    }

    /// Remembers that the changelog must drop key `key`'s window at `start`.
    pub fn push_removed(&mut self, key: KeyId, start: i64) {
        self.keys.hold(key);
        self.removed.push((key, start));
    }

    /// Takes the window out of `slot` and its indexes; its key stays in the
    /// table (see [`KeyTable::release`]).
    pub fn remove(&mut self, slot: u32) -> OpenWindow {
        let closes = self.closes_at(self.get(slot).end);
        self.closing.remove(closes, slot);
        self.unlink(slot)
    }

    /// [`Store::remove`] of a window already out of the close index.
    fn unlink(&mut self, slot: u32) -> OpenWindow {
        let w = self.slots[slot as usize].take().expect("an open window");
        self.free.push(slot);
        self.open -= 1;
        let ws = self.keys.windows_mut(w.key);
        if let Ok(i) = ws.binary_search_by_key(&w.start, |(s, _)| *s) {
            ws.remove(i);
        }
        if w.persisted {
            self.push_removed(w.key, w.start);
        }
        w
    }

    /// Takes out every window of the earliest close time at or before `to`,
    /// by key text and start; `None` when none is due. Their keys stay in
    /// the table.
    pub fn pop_due(&mut self, to: i64) -> Option<Vec<OpenWindow>> {
        let mut slots = self.closing.pop_due(to)?;
        self.sort_by_key_text(&mut slots);
        Some(slots.into_iter().map(|s| self.unlink(s)).collect())
    }

    /// Sorts `slots` (of open windows) by key text, then start: the order
    /// results and changes come out in.
    pub fn sort_by_key_text(&self, slots: &mut [u32]) {
        if slots.len() < 2 {
            return;
        }
        // Sort the texts with the slots beside them: a comparison then reads
        // two texts, not two windows and two keys first.
        let mut by_text: Vec<(&str, i64, u32)> = slots
            .iter()
            .map(|s| {
                let w = self.get(*s);
                (self.keys.text(w.key), w.start, *s)
            })
            .collect();
        by_text.sort_unstable();
        for (slot, (_, _, s)) in slots.iter_mut().zip(by_text) {
            *slot = s;
        }
    }

    /// Estimated bytes of the windows, their aggregate states, the keys
    /// and every index.
    pub fn approx_bytes(&self) -> usize {
        let aggs: usize = self
            .iter()
            .map(|(_, w)| w.aggs.iter().map(AggState::approx_bytes).sum::<usize>())
            .sum();
        self.slots.capacity() * size_of::<Option<OpenWindow>>()
            + self.free.capacity() * size_of::<u32>()
            + self.dirty.capacity() * size_of::<u32>()
            + self.removed.capacity() * size_of::<(KeyId, i64)>()
            + aggs
            + self.keys.approx_bytes()
            + self.closing.approx_bytes()
    }
}
