//! Window results: the record a window emits (`{key, window: {start, end},
//! <aggregate>: …}`, keyed by the window's key, at time `end - 1`), and
//! the early results of `emit: {every: D}`.

use super::keys::KeyTable;
use super::store::OpenWindow;
use super::{WindowDef, WindowOperator};
use crate::record::{plain_name, write_value, ObjectWriter, Record};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Whether the results of `def` can be written straight to bytes
/// ([`ObjectWriter`]): every aggregate name is a [`plain_name`], neither
/// `key` nor `window`, and unique. Otherwise results are built as a JSON
/// map, whose insertion rules then decide what a clashing name gives.
pub(super) fn writes_bytes(def: &WindowDef) -> bool {
    let names = || def.aggregates.iter().map(|a| a.name.as_str());
    names().enumerate().all(|(i, n)| {
        plain_name(n) && n != "key" && n != "window" && !names().take(i).any(|m| m == n)
    })
}

/// The result record of window `w`; its payload written straight to JSON
/// bytes when `bytes` ([`writes_bytes`]), the same text the map gives.
pub(super) fn result(def: &WindowDef, keys: &KeyTable, w: &OpenWindow, bytes: bool) -> Record {
    if !bytes {
        return result_map(def, keys, w);
    }
    let key = keys.value(w.key);
    let mut o =
        ObjectWriter::with_capacity(64 + 16 * def.aggregates.len(), 2 + def.aggregates.len());
    o.raw("key", keys.text(w.key).as_bytes());
    o.field("window", |b| {
        b.extend_from_slice(b"{\"start\":");
        write_value(b, &Value::from(w.start));
        b.extend_from_slice(b",\"end\":");
        write_value(b, &Value::from(w.end));
        b.push(b'}');
    });
    for (spec, state) in def.aggregates.iter().zip(w.aggs.iter()) {
        o.value(&spec.name, &state.result());
    }
    let mut r = Record::new(key.clone(), Value::Null);
    r.lazy = Some(Arc::new(o.finish()));
    r.timestamp = w.end - 1;
    r.event_time = w.end - 1;
    r
}

/// [`result`] built as a JSON map.
fn result_map(def: &WindowDef, keys: &KeyTable, w: &OpenWindow) -> Record {
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
            out.push(result(
                &self.def,
                &store.keys,
                store.get(slot),
                self.bytes_results,
            ));
        }
    }
}
