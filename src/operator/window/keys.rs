//! The key table of a window operator: each record key with an open window
//! (or a removal still to be written to the changelog) is stored once, as
//! its JSON value and its JSON text, under a numeric [`KeyId`]; windows
//! refer to their key by id. A key is looked up without allocating: a
//! string key by its contents, any other key by its JSON text written into
//! a reused buffer. Two keys are the same key exactly when their JSON texts
//! are equal (as when the text itself was the map key). A key whose last
//! window is gone and that no pending removal names is freed, and its id
//! reused, after two rounds of closing windows (see [`KeyTable::sweep`]).

use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// Index of a key in its [`KeyTable`].
pub type KeyId = u32;

/// End of a hash chain.
const NONE: KeyId = KeyId::MAX;

/// A hasher for keys that already are uniform 64-bit hashes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, h: u64) {
        self.0 = h;
    }
}

#[derive(Debug, Clone)]
struct Entry {
    value: Value,
    text: Box<str>,
    /// Next key with the same hash (a 64-bit collision), or [`NONE`].
    next: KeyId,
    /// The key's open windows as `(start, slot)`, by start.
    windows: Vec<(i64, u32)>,
    /// Removals waiting for the changelog that name this key.
    pending: u32,
    /// The sweep round in which the key was last released.
    released: u32,
}

/// Interned keys with their open windows, by [`KeyId`].
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    entries: Vec<Entry>,
    free: Vec<KeyId>,
    /// Hash → first key of its chain.
    index: HashMap<u64, KeyId, BuildHasherDefault<PreHashed>>,
    hasher: RandomState,
    /// The JSON text of the last non-string key looked up.
    buf: String,
    live: usize,
    /// Keys released since the last sweep (may repeat or be in use again).
    idle: Vec<KeyId>,
    /// Keys released before the last sweep.
    older: Vec<KeyId>,
    /// Sweeps so far.
    round: u32,
    /// Every key hashes alike (tests of the collision chains).
    #[cfg(test)]
    collide_all: bool,
}

impl KeyTable {
    /// The hash of a string key's contents (`Some`) or of another key's
    /// text.
    fn hash(&self, string: Option<&str>, text: &str) -> u64 {
        #[cfg(test)]
        if self.collide_all {
            return 42;
        }
        let mut h = self.hasher.build_hasher();
        match string {
            Some(s) => {
                h.write_u8(0);
                h.write(s.as_bytes());
            }
            None => {
                h.write_u8(1);
                h.write(text.as_bytes());
            }
        }
        h.finish()
    }

    /// Hashes `key`, leaving the text of a non-string key in `buf`, and
    /// finds it.
    fn probe(&mut self, key: &Value) -> (u64, Option<KeyId>) {
        let hash = match key {
            Value::String(s) => self.hash(Some(s), ""),
            other => {
                self.buf.clear();
                write!(self.buf, "{other}").expect("JSON text of a value");
                self.hash(None, &self.buf)
            }
        };
        let mut id = self.index.get(&hash).copied().unwrap_or(NONE);
        while id != NONE {
            let e = &self.entries[id as usize];
            let same = match (key, &e.value) {
                (Value::String(a), Value::String(b)) => a == b,
                (Value::String(_), _) | (_, Value::String(_)) => false,
                _ => *e.text == *self.buf,
            };
            if same {
                return (hash, Some(id));
            }
            id = e.next;
        }
        (hash, None)
    }

    /// The id of `key`, if it is in the table.
    pub fn get(&mut self, key: &Value) -> Option<KeyId> {
        self.probe(key).1
    }

    /// The id of `key`, added to the table (a copy) when new.
    pub fn intern(&mut self, key: &Value) -> KeyId {
        match self.probe(key) {
            (_, Some(id)) => id,
            (hash, None) => self.insert(hash, key.clone()),
        }
    }

    /// The id of `key`, added to the table when new.
    pub fn intern_owned(&mut self, key: Value) -> KeyId {
        match self.probe(&key) {
            (_, Some(id)) => id,
            (hash, None) => self.insert(hash, key),
        }
    }

    fn insert(&mut self, hash: u64, value: Value) -> KeyId {
        let text: Box<str> = match &value {
            Value::String(_) => value.to_string().into(),
            _ => self.buf.as_str().into(),
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.entries.push(Entry {
                    value: Value::Null,
                    text: "".into(),
                    next: NONE,
                    windows: Vec::new(),
                    pending: 0,
                    released: 0,
                });
                KeyId::try_from(self.entries.len() - 1).expect("fewer than 2^32 keys")
            }
        };
        let next = self.index.insert(hash, id).unwrap_or(NONE);
        let e = &mut self.entries[id as usize];
        e.value = value;
        e.text = text;
        e.next = next;
        e.pending = 0;
        self.live += 1;
        id
    }

    /// The key as JSON.
    pub fn value(&self, id: KeyId) -> &Value {
        &self.entries[id as usize].value
    }

    /// The key's JSON text.
    pub fn text(&self, id: KeyId) -> &str {
        &self.entries[id as usize].text
    }

    /// The key's open windows as `(start, slot)`, by start.
    pub fn windows(&self, id: KeyId) -> &[(i64, u32)] {
        &self.entries[id as usize].windows
    }

    /// The key's open windows, to change (kept sorted by start).
    pub fn windows_mut(&mut self, id: KeyId) -> &mut Vec<(i64, u32)> {
        &mut self.entries[id as usize].windows
    }

    /// One more pending removal names the key.
    pub fn hold(&mut self, id: KeyId) {
        self.entries[id as usize].pending += 1;
    }

    /// One pending removal less names the key; see [`KeyTable::release`].
    pub fn unhold(&mut self, id: KeyId) {
        let e = &mut self.entries[id as usize];
        e.pending = e.pending.saturating_sub(1);
        self.release(id);
    }

    fn unused(&self, id: KeyId) -> bool {
        let e = &self.entries[id as usize];
        e.windows.is_empty() && e.pending == 0 && !e.text.is_empty()
    }

    /// Marks the key idle when no window and no pending removal refers to
    /// it: [`KeyTable::sweep`] frees it unless it is used again before.
    pub fn release(&mut self, id: KeyId) {
        if self.unused(id) {
            self.entries[id as usize].released = self.round;
            self.idle.push(id);
        }
    }

    /// Frees the keys released before the previous sweep that are still
    /// unused. Called once per round of closing windows, it keeps a key
    /// whose windows follow one another (every minute of a tumbling job)
    /// instead of freeing and adding it again every window, and frees a key
    /// gone for good after two rounds.
    pub fn sweep(&mut self) {
        for id in std::mem::take(&mut self.older) {
            // Released again since, it waits for the next sweep.
            if self.entries[id as usize].released != self.round {
                self.free_if_unused(id);
            }
        }
        self.older = std::mem::take(&mut self.idle);
        self.round = self.round.wrapping_add(1);
    }

    fn free_if_unused(&mut self, id: KeyId) {
        if !self.unused(id) {
            return;
        }
        let e = &self.entries[id as usize];
        let hash = self.hash(e.value.as_str(), &e.text);
        let next = e.next;
        if self.index.get(&hash) == Some(&id) {
            if next == NONE {
                self.index.remove(&hash);
            } else {
                self.index.insert(hash, next);
            }
        } else {
            let mut at = self.index.get(&hash).copied().unwrap_or(NONE);
            while at != NONE {
                let e = &mut self.entries[at as usize];
                if e.next == id {
                    e.next = next;
                    break;
                }
                at = e.next;
            }
        }
        let e = &mut self.entries[id as usize];
        e.value = Value::Null;
        e.text = "".into();
        e.windows = Vec::new();
        e.next = NONE;
        self.free.push(id);
        self.live -= 1;
    }

    /// Keys in the table (idle ones too).
    pub fn len(&self) -> usize {
        self.live
    }

    /// Estimated bytes held by the table: entries, texts, values, window
    /// lists and the hash index.
    pub fn approx_bytes(&self) -> usize {
        let heap: usize = self
            .entries
            .iter()
            .filter(|e| !e.text.is_empty())
            .map(|e| {
                e.text.len() + value_heap(&e.value) + e.windows.capacity() * size_of::<(i64, u32)>()
            })
            .sum();
        self.entries.capacity() * size_of::<Entry>()
            + self.index.capacity() * (size_of::<(u64, KeyId)>() + 1)
            + heap
    }
}

/// Rough heap bytes of a JSON value.
fn value_heap(v: &Value) -> usize {
    match v {
        Value::String(s) => s.capacity(),
        Value::Array(a) => a.iter().map(|v| size_of::<Value>() + value_heap(v)).sum(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| 2 * size_of::<Value>() + k.capacity() + value_heap(v))
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_the_same_when_their_texts_are() {
        let mut t = KeyTable::default();
        let a = t.intern(&json!("a"));
        let one = t.intern(&json!(1));
        let one_f = t.intern(&json!(1.0));
        let obj = t.intern(&json!({"x": [1, "a"]}));
        assert_eq!(t.len(), 4);
        assert_ne!(one, one_f, "1 and 1.0 are two texts");
        assert_eq!(t.get(&json!("a")), Some(a));
        assert_eq!(t.get(&json!({"x": [1, "a"]})), Some(obj));
        assert_eq!(t.get(&json!("\"a\"")), None);
        assert_eq!(t.text(a), "\"a\"");
        assert_eq!(t.text(obj), r#"{"x":[1,"a"]}"#);
        // A string whose contents are another key's text is another key.
        let quoted = t.intern(&json!("1"));
        assert_ne!(quoted, one);
        assert_eq!(t.text(quoted), "\"1\"");
    }

    #[test]
    fn a_key_is_freed_with_its_last_window_and_pending_removal() {
        let mut t = KeyTable::default();
        let a = t.intern(&json!("a"));
        t.windows_mut(a).push((0, 7));
        t.hold(a);
        t.release(a);
        assert_eq!(t.get(&json!("a")), Some(a), "a window is open");
        t.windows_mut(a).clear();
        t.release(a);
        assert_eq!(t.get(&json!("a")), Some(a), "a removal is pending");
        t.unhold(a);
        t.sweep();
        assert_eq!(t.get(&json!("a")), Some(a), "idle for one round");
        t.sweep();
        assert_eq!((t.get(&json!("a")), t.len()), (None, 0));
        let b = t.intern(&json!("b"));
        assert_eq!(b, a, "the id is reused");
        assert_eq!(t.value(b), &json!("b"));
    }

    #[test]
    fn colliding_hashes_chain() {
        let mut t = KeyTable {
            collide_all: true,
            ..KeyTable::default()
        };
        let keys = [json!("x"), json!(1), json!("y"), json!(null)];
        let ids: Vec<KeyId> = keys.iter().map(|k| t.intern(k)).collect();
        assert_eq!(t.index.len(), 1, "one chain");
        for (k, id) in keys.iter().zip(&ids) {
            assert_eq!(t.get(k), Some(*id));
        }
        t.release(ids[1]);
        t.release(ids[3]);
        t.sweep();
        t.sweep();
        assert_eq!((t.get(&keys[1]), t.get(&keys[3])), (None, None));
        assert_eq!(
            (t.get(&keys[0]), t.get(&keys[2])),
            (Some(ids[0]), Some(ids[2]))
        );
        t.release(ids[2]);
        t.release(ids[0]);
        t.sweep();
        t.sweep();
        assert!(t.index.is_empty());
        assert_eq!(t.len(), 0);
    }
}
