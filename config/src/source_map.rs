//! Where every YAML node sits in the source text, keyed by its field path.
//!
//! Deserialisation errors from `serde-saphyr` carry a line and column but no field path,
//! and errors found during validation know their field path but not their position. A
//! `SourceMap` answers both questions: it walks the parser's event stream once and
//! records, for every mapping key and every value, its dotted path
//! (`scrape_configs[1].scrape_timeout`) and its 1-based position. Keeping positions
//! out of the raw types keeps those types plain serde structs.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, Span};

/// A 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line number.
    pub line: u64,
    /// 1-based column, counted in characters.
    pub column: u64,
}

/// The path of the mapping entry `key` inside `parent` (`parent.key`).
///
/// Keys that are not plain identifiers are quoted (`external_labels["app.io/name"]`) so
/// that the path stays unambiguous.
pub(crate) fn child_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// The path of the sequence item `index` inside `parent` (`parent[index]`).
pub(crate) fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Field paths and their positions for one YAML document.
#[derive(Debug, Default, Clone)]
pub(crate) struct SourceMap {
    /// Position of the key of each mapping entry, by the entry's path.
    keys: HashMap<String, Position>,
    /// Position where each value (scalar, mapping, sequence or alias) starts, by its path.
    values: HashMap<String, Position>,
    /// Reverse index for deserialisation errors: the path of the key starting at a position.
    key_at: HashMap<Position, String>,
    /// Reverse index: the path of the value starting at a position.
    value_at: HashMap<Position, String>,
    /// Every recorded (position, path), sorted, for errors that fall between nodes.
    ordered: Vec<(Position, String)>,
}

/// One open collection while walking the event stream.
enum Frame {
    Mapping {
        path: String,
        /// The key of the entry whose value comes next, or `None` when a key comes next.
        pending_key: Option<String>,
    },
    Sequence {
        path: String,
        next_index: usize,
    },
    /// A collection used as a mapping key: not addressable by a path, so skipped whole.
    ComplexKey {
        depth: usize,
    },
}

impl SourceMap {
    /// Indexes `text`. A syntax error stops the walk early; whatever was indexed up to
    /// that point is kept, and the deserialiser reports the error itself.
    pub(crate) fn build(text: &str) -> Self {
        let mut map = Self::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents = 0usize;
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            match event {
                Event::DocumentStart(..) => {
                    documents += 1;
                    // Only the first document is the configuration.
                    if documents > 1 {
                        break;
                    }
                }
                Event::Scalar(value, ..) => map.node(&mut stack, span, Some(&value), None),
                Event::Alias(..) => map.node(&mut stack, span, None, None),
                Event::MappingStart(..) => map.node(&mut stack, span, None, Some(true)),
                Event::SequenceStart(..) => map.node(&mut stack, span, None, Some(false)),
                Event::MappingEnd | Event::SequenceEnd => map.end_collection(&mut stack),
                _ => {}
            }
        }
        map.ordered.sort();
        map
    }

    /// Records one node. `scalar` is the text of a scalar node; `opens` is `Some(true)` for
    /// a mapping start and `Some(false)` for a sequence start.
    fn node(
        &mut self,
        stack: &mut Vec<Frame>,
        span: Span,
        scalar: Option<&str>,
        opens: Option<bool>,
    ) {
        let position = Position {
            line: span.start.line() as u64,
            column: span.start.col() as u64 + 1,
        };
        if let Some(Frame::ComplexKey { depth }) = stack.last_mut() {
            if opens.is_some() {
                *depth += 1;
            }
            return;
        }
        let path = match stack.last_mut() {
            None => String::new(),
            Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
                Some(key) => child_key(path, &key),
                None => {
                    match scalar {
                        Some(key) => {
                            let key_path = child_key(path, key);
                            self.record_key(key_path, position);
                            *pending_key = Some(key.to_owned());
                        }
                        // A non-scalar key: its value is recorded under a placeholder name.
                        None => {
                            *pending_key = Some("?".to_owned());
                            if opens.is_some() {
                                stack.push(Frame::ComplexKey { depth: 1 });
                            }
                        }
                    }
                    return;
                }
            },
            Some(Frame::Sequence { path, next_index }) => {
                *next_index += 1;
                child_index(path, *next_index - 1)
            }
            Some(Frame::ComplexKey { .. }) => return,
        };
        self.record_value(path.clone(), position);
        match opens {
            Some(true) => stack.push(Frame::Mapping {
                path,
                pending_key: None,
            }),
            Some(false) => stack.push(Frame::Sequence {
                path,
                next_index: 0,
            }),
            None => {}
        }
    }

    fn end_collection(&mut self, stack: &mut Vec<Frame>) {
        if let Some(Frame::ComplexKey { depth }) = stack.last_mut() {
            *depth -= 1;
            if *depth == 0 {
                stack.pop();
            }
            return;
        }
        stack.pop();
    }

    fn record_key(&mut self, path: String, position: Position) {
        self.key_at.entry(position).or_insert_with(|| path.clone());
        self.ordered.push((position, path.clone()));
        self.keys.entry(path).or_insert(position);
    }

    fn record_value(&mut self, path: String, position: Position) {
        self.value_at
            .entry(position)
            .or_insert_with(|| path.clone());
        self.ordered.push((position, path.clone()));
        self.values.entry(path).or_insert(position);
    }

    /// The position to report for a problem with the field at `path`: its key if it is a
    /// mapping entry, else its value; for a field absent from the file, the nearest
    /// ancestor that is present.
    pub(crate) fn position_of(&self, path: &str) -> Position {
        let mut current = path;
        loop {
            if let Some(position) = self.keys.get(current).or_else(|| self.values.get(current)) {
                return *position;
            }
            match parent_path(current) {
                Some(parent) => current = parent,
                None => return Position { line: 1, column: 1 },
            }
        }
    }

    /// The position of the value at `path`, if present (used for errors about a value,
    /// such as one item of a list).
    #[cfg(test)]
    pub(crate) fn value_position(&self, path: &str) -> Option<Position> {
        self.values.get(path).copied()
    }

    /// The field path for a deserialisation error reported at `position`.
    ///
    /// Errors about a whole mapping ("missing field") point at the mapping's first
    /// character, which is also where its first key starts; `prefer_container` picks the
    /// mapping's own path in that case, and the key's path otherwise (unknown fields,
    /// duplicate keys).
    pub(crate) fn path_at(&self, position: Position, prefer_container: bool) -> String {
        let (first, second) = if prefer_container {
            (&self.value_at, &self.key_at)
        } else {
            (&self.key_at, &self.value_at)
        };
        if let Some(path) = first.get(&position).or_else(|| second.get(&position)) {
            return path.clone();
        }
        // Between nodes (e.g. a syntax error): the last node starting before the position.
        let index = self.ordered.partition_point(|(p, _)| *p <= position);
        index
            .checked_sub(1)
            .and_then(|i| self.ordered.get(i))
            .map(|(_, path)| path.clone())
            .unwrap_or_default()
    }
}

/// The parent of a path built by [`child_key`] / [`child_index`], or `None` at the root.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        // Either `[3]` or `["quoted key"]`: find the bracket that opens this last segment.
        let open = if path.ends_with("\"]") {
            // Scan back over the quoted key, honouring backslash escapes.
            let bytes = path.as_bytes();
            let mut i = path.len() - 2;
            loop {
                let quote = path[..i].rfind('"')?;
                let backslashes = bytes[..quote]
                    .iter()
                    .rev()
                    .take_while(|b| **b == b'\\')
                    .count();
                if backslashes % 2 == 0 {
                    break quote.checked_sub(1)?;
                }
                i = quote;
            }
        } else {
            path.rfind('[')?
        };
        return Some(&path[..open]);
    }
    Some(path.rfind('.').map_or("", |dot| &path[..dot]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
global:
  scrape_interval: 15s
  external_labels:
    app.io/name: x
scrape_configs:
  - job_name: a
    static_configs:
      - targets: [a:1, b:2]
  - job_name: b
    scrape_timeout: 20s
";

    fn pos(line: u64, column: u64) -> Position {
        Position { line, column }
    }

    #[test]
    fn records_keys_and_values_by_path() {
        let map = SourceMap::build(TEXT);
        assert_eq!(map.position_of("global.scrape_interval"), pos(2, 3));
        assert_eq!(
            map.value_position("global.scrape_interval"),
            Some(pos(2, 20))
        );
        assert_eq!(
            map.position_of(r#"global.external_labels["app.io/name"]"#),
            pos(4, 5)
        );
        assert_eq!(map.position_of("scrape_configs[1]"), pos(9, 5));
        assert_eq!(
            map.position_of("scrape_configs[1].scrape_timeout"),
            pos(10, 5)
        );
        assert_eq!(
            map.value_position("scrape_configs[0].static_configs[0].targets[1]"),
            Some(pos(8, 24))
        );
    }

    #[test]
    fn absent_fields_fall_back_to_their_nearest_ancestor() {
        let map = SourceMap::build(TEXT);
        assert_eq!(
            map.position_of("scrape_configs[1].scrape_interval"),
            pos(9, 5)
        );
        assert_eq!(
            map.position_of(r#"global.external_labels["a\"b"].x"#),
            pos(3, 3)
        );
        assert_eq!(map.position_of("alerting.alertmanagers[0]"), pos(1, 1));
    }

    #[test]
    fn reverse_lookup_prefers_keys_or_containers() {
        let map = SourceMap::build(TEXT);
        assert_eq!(map.path_at(pos(9, 5), false), "scrape_configs[1].job_name");
        assert_eq!(map.path_at(pos(9, 5), true), "scrape_configs[1]");
        assert_eq!(
            map.path_at(pos(10, 21), false),
            "scrape_configs[1].scrape_timeout"
        );
    }

    #[test]
    fn parent_paths_strip_one_segment() {
        assert_eq!(parent_path("a.b[2]"), Some("a.b"));
        assert_eq!(parent_path("a.b"), Some("a"));
        assert_eq!(parent_path("a"), Some(""));
        assert_eq!(parent_path(r#"a["x.y"]"#), Some("a"));
        assert_eq!(parent_path(r#"a["x\"]"]"#), Some("a"));
        assert_eq!(parent_path(""), None);
    }
}
