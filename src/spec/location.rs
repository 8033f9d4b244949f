//! Field path → source position index of a YAML document.
//!
//! `serde_yaml` locates its own deserialisation errors, but checks that run
//! after deserialisation (CEL, JSONPath, cross-field rules) need to find where
//! a field was written. This walks the document once with `yaml-rust2`'s
//! marked event parser and records the position of every node under its
//! dotted path (`stages[1].window.aggregate.flights`).

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Positions of every node of one YAML document, keyed by dotted field path.
#[derive(Debug, Default, Clone)]
pub struct LocationIndex {
    positions: HashMap<String, (usize, usize)>,
}

impl LocationIndex {
    /// Indexes `text`. A document that does not parse yields an empty index
    /// (serde_yaml then reports the syntax error with its own location).
    pub fn build(text: &str) -> Self {
        let mut b = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut b, false).is_err() {
            return LocationIndex::default();
        }
        LocationIndex {
            positions: b.positions,
        }
    }

    /// 1-based (line, column) of the node at `path`, or of its nearest indexed
    /// ancestor; (1, 1) when nothing matches.
    pub fn position(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.positions.get("").copied().unwrap_or((1, 1)),
            }
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, (usize, usize)>,
}

impl Builder {
    /// Path of the node that starts now, advancing the parent's cursor.
    fn next_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => {
                let k = key.take()?;
                Some(if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                })
            }
        }
    }

    /// True when a scalar now is a mapping key rather than a value.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(s, ..) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { key, path }) = self.stack.last_mut() {
                        let full = if path.is_empty() {
                            s.clone()
                        } else {
                            format!("{path}.{s}")
                        };
                        // A key's own position, used when its value is a collection
                        // whose start mark is on the next line.
                        self.positions.entry(full).or_insert(pos);
                        *key = Some(s);
                    }
                } else if let Some(p) = self.next_path() {
                    self.positions.insert(p, pos);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let p = self.next_path().unwrap_or_default();
                self.positions.entry(p.clone()).or_insert(pos);
                self.stack.push(if is_map {
                    Frame::Map { path: p, key: None }
                } else {
                    Frame::Seq { path: p, index: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.next_path();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_nested_paths_with_lines_and_columns() {
        let text = "name: x\nstages:\n  - filter: a > 1\n  - window:\n      tumbling: 1h\n";
        let idx = LocationIndex::build(text);
        assert_eq!(idx.position("name"), (1, 7));
        assert_eq!(idx.position("stages[0].filter"), (3, 13));
        assert_eq!(idx.position("stages[1].window.tumbling"), (5, 17));
        // unknown child falls back to its parent
        assert_eq!(idx.position("stages[1].window.nope"), (4, 5));
    }
}
