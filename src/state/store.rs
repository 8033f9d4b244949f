//! Stores: the keyed state an operator declares (DESIGN.md §4). A store has
//! a name (its changelog is `<group>.<name>.changelog`), a key codec, a
//! value codec and whether it is queryable. Window stages are the first
//! users; tables, join buffers and read models declare stores of their own
//! kinds.

use super::codec;

/// How a store's keys are written in its changelog record keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCodec {
    /// The record key's JSON text and the window start (ms):
    /// [`codec::entry_key`].
    KeyAndWindowStart,
}

/// How a store's values are written in its changelog record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueCodec {
    /// An open window: [`codec::encode_entry`] (version byte, MessagePack).
    WindowEntry,
}

/// One store an operator declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// Store name, unique in the pipeline.
    pub name: String,
    /// Index of the stage that owns it.
    pub stage: usize,
    /// Key codec.
    pub key: KeyCodec,
    /// Value codec.
    pub value: ValueCodec,
    /// Whether the query API serves it (read models).
    pub queryable: bool,
}

impl StoreSpec {
    /// The store of the window stage at index `stage`, named after its
    /// index (so its changelog is `<group>.<stage>.changelog`).
    pub fn window(stage: usize) -> Self {
        StoreSpec {
            name: codec::window_store(stage),
            stage,
            key: KeyCodec::KeyAndWindowStart,
            value: ValueCodec::WindowEntry,
            queryable: false,
        }
    }

    /// The store's changelog topic in consumer group `group`.
    pub fn changelog(&self, group: &str) -> String {
        codec::changelog_topic(group, &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_store_keeps_the_changelog_name_of_its_stage() {
        let s = StoreSpec::window(2);
        assert_eq!(s.name, "2");
        assert_eq!(s.changelog("weir.p"), "weir.p.2.changelog");
        assert!(!s.queryable);
    }
}
