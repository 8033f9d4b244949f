//! The assigned partitions of one pipeline, by topic and partition number,
//! with O(1) lookup by `(&str, i32)` (no allocation per record).

use std::collections::HashMap;
use std::sync::Arc;

/// A topic and partition: how a partition is named in logs and maps.
pub type TopicPartition = (Arc<str>, i32);

/// Values (one per assigned partition) by topic, then partition.
#[derive(Debug)]
pub struct Partitions<T> {
    by_topic: HashMap<Arc<str>, HashMap<i32, T>>,
}

impl<T> Default for Partitions<T> {
    fn default() -> Self {
        Partitions {
            by_topic: HashMap::new(),
        }
    }
}

impl<T> Partitions<T> {
    /// The value of `partition` of `topic`, if assigned.
    pub fn get_mut(&mut self, topic: &str, partition: i32) -> Option<&mut T> {
        self.by_topic.get_mut(topic)?.get_mut(&partition)
    }

    /// The value of `partition` of `topic`, if assigned.
    pub fn get(&self, topic: &str, partition: i32) -> Option<&T> {
        self.by_topic.get(topic)?.get(&partition)
    }

    /// Assigns `tp`; returns the value it replaced.
    pub fn insert(&mut self, tp: TopicPartition, value: T) -> Option<T> {
        self.by_topic.entry(tp.0).or_default().insert(tp.1, value)
    }

    /// Revokes `partition` of `topic`.
    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<T> {
        let ps = self.by_topic.get_mut(topic)?;
        let v = ps.remove(&partition);
        if ps.is_empty() {
            self.by_topic.remove(topic);
        }
        v
    }

    /// The topic's shared name, if any of its partitions is assigned.
    pub fn topic(&self, topic: &str) -> Option<Arc<str>> {
        self.by_topic
            .get_key_value(topic)
            .map(|(k, _)| Arc::clone(k))
    }

    /// Every assigned partition and its value.
    pub fn iter(&self) -> impl Iterator<Item = ((&Arc<str>, i32), &T)> {
        self.by_topic
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, v)| ((t, *p), v)))
    }

    /// Every assigned partition and its value, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = ((&Arc<str>, i32), &mut T)> {
        self.by_topic
            .iter_mut()
            .flat_map(|(t, ps)| ps.iter_mut().map(move |(p, v)| ((&*t, *p), v)))
    }

    /// Every value.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.by_topic.values().flat_map(HashMap::values)
    }

    /// Every value, mutable.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.by_topic.values_mut().flat_map(HashMap::values_mut)
    }

    /// Number of assigned partitions.
    pub fn len(&self) -> usize {
        self.by_topic.values().map(HashMap::len).sum()
    }

    /// Whether none is assigned.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_insert_remove() {
        let mut p = Partitions::default();
        p.insert((Arc::from("a"), 0), 1);
        p.insert((Arc::from("a"), 3), 2);
        p.insert((Arc::from("b"), 0), 3);
        assert_eq!(p.get("a", 3), Some(&2));
        assert_eq!(p.get("a", 1), None);
        *p.get_mut("b", 0).unwrap() += 10;
        assert_eq!(p.remove("b", 0), Some(13));
        assert_eq!(p.topic("b"), None);
        assert_eq!(p.len(), 2);
        let mut all: Vec<_> = p.iter().map(|((t, n), v)| (t.to_string(), n, *v)).collect();
        all.sort();
        assert_eq!(all, vec![("a".into(), 0, 1), ("a".into(), 3, 2)]);
    }
}
