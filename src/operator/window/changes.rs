//! The window operator's side of the changelog (DESIGN.md §3, State):
//! handing out what changed since the last commit, borrowed, and putting
//! windows back from the changelog.

use super::store::OpenWindow;
use super::{ChangeRef, StateChange, WindowEntry, WindowEntryRef, WindowOperator};
use serde_json::Value;

impl WindowOperator {
    /// Whether [`WindowOperator::drain_changes`] has anything to hand out
    /// (an upper bound: a changed window may have closed since, unseen).
    pub fn has_changes(&self) -> bool {
        !self.store.dirty.is_empty() || !self.store.removed.is_empty()
    }

    /// Hands every change since the last call to `f`, borrowed: a removal
    /// for each window that was handed out before and is gone now, then the
    /// state of each changed open window (in order of key text, then
    /// start). Marks those windows as persisted. Nothing is cloned, so a
    /// commit of many windows costs no second copy of the state, and only
    /// changed windows are visited.
    pub fn drain_changes(&mut self, mut f: impl FnMut(ChangeRef<'_>)) {
        let store = &mut self.store;
        for (key, start) in std::mem::take(&mut store.removed) {
            if store.find(key, start).is_none() {
                f(ChangeRef::Remove {
                    key_text: store.keys.text(key),
                    start,
                });
            }
            store.keys.unhold(key);
        }
        let mut slots = std::mem::take(&mut store.dirty);
        slots.retain(|slot| {
            let w = store.slot_mut(*slot);
            match w {
                Some(w) if w.dirty => {
                    w.dirty = false;
                    w.persisted = true;
                    true
                }
                _ => false,
            }
        });
        store.sort_by_key_text(&mut slots);
        for slot in &slots {
            let w = store.get(*slot);
            f(ChangeRef::Put {
                key_text: store.keys.text(w.key),
                entry: WindowEntryRef {
                    key: store.keys.value(w.key),
                    start: w.start,
                    end: w.end,
                    aggs: &w.aggs,
                    changed: w.changed,
                },
            });
        }
        // Keep the list's allocation for the next commit.
        slots.clear();
        store.dirty = slots;
    }

    /// [`WindowOperator::drain_changes`], as owned changes.
    pub fn take_changes(&mut self) -> Vec<StateChange> {
        let mut changes = Vec::new();
        self.drain_changes(|c| changes.push(c.to_owned_change()));
        changes
    }

    /// Puts back a window from the changelog (before any record is
    /// processed); it counts as persisted and unchanged.
    pub fn restore(&mut self, e: WindowEntry) {
        let store = &mut self.store;
        let key = store.keys.intern_owned(e.key);
        let aggs = e.aggs.into_boxed_slice();
        match store.find(key, e.start) {
            Some(slot) => {
                store.set_end(slot, e.end);
                let w = store.get_mut(slot);
                w.aggs = aggs;
                w.changed = e.changed;
                w.dirty = false;
                w.persisted = true;
            }
            None => {
                store.insert(OpenWindow {
                    key,
                    changed: e.changed,
                    dirty: false,
                    persisted: true,
                    start: e.start,
                    end: e.end,
                    aggs,
                });
            }
        }
    }

    /// A window that the changelog holds in a newer, unconfirmed version
    /// (written after the checkpoint the state was restored from): the next
    /// [`WindowOperator::take_changes`] must overwrite it, with the restored
    /// state or a removal.
    pub fn mark_unconfirmed(&mut self, key: &Value, start: i64) {
        let store = &mut self.store;
        let k = store.keys.intern(key);
        match store.find(k, start) {
            Some(slot) => store.mark_dirty(slot),
            None => store.push_removed(k, start),
        }
    }
}
