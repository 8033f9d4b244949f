//! Window results: the record a window emits (`{key, window: {start, end},
//! <aggregate>: …}`, keyed by the window's key, at time `end - 1`), and
//! the early results of `emit: {every: D}`.

use super::keys::KeyTable;
use super::store::OpenWindow;
use super::{WindowDef, WindowOperator};
use crate::record::Record;
use serde_json::{Map, Value};

/// The result record of window `w`.
pub(super) fn result(def: &WindowDef, keys: &KeyTable, w: &OpenWindow) -> Record {
    let key = keys.value(w.key);
    let mut v = Map::with_capacity(2 + w.aggs.len());
    v.insert("key".into(), key.clone());
    let mut win = Map::with_capacity(2);
    win.insert("start".into(), Value::from(w.start));
    win.insert("end".into(), Value::from(w.end));
    v.insert("window".into(), Value::Object(win));
    for (spec, state) in def.aggregates.iter().zip(w.aggs.iter()) {
        v.insert(spec.name.clone(), state.result());
    }
    let mut r = Record::new(key.clone(), Value::Object(v));
    r.timestamp = w.end - 1;
    r.event_time = w.end - 1;
    r
}

impl WindowOperator {
    /// Appends an early result of every open window changed since its last
    /// result, by key text and start (`emit: {every: D}`).
    pub(super) fn early_results(&mut self, out: &mut Vec<Record>) {
        let store = &mut self.store;
        let mut slots: Vec<u32> = store
            .iter()
            .filter(|(_, w)| w.changed)
            .map(|(slot, _)| slot)
            .collect();
        store.sort_by_key_text(&mut slots);
        for slot in slots {
            store.get_mut(slot).changed = false;
            store.mark_dirty(slot);
            out.push(result(&self.def, &store.keys, store.get(slot)));
        }
    }
}
