//! The `relabeler` world: rewrite or drop label sets, one batch per call.
//!
//! The batch arrives packed (`label-batch` in WIT: one string and two flat
//! lists) and [`Batch`] edits it in place: reading a label borrows from the
//! batch's text, and a new value is appended to that text, so a plugin that
//! changes few labels copies almost nothing. See the WIT documentation of
//! `label-batch` for why the contract is shaped this way.

use crate::bindings::relabeler::ember::plugin::types::{LabelBatch, RelabeledBatch};
use crate::{Config, PluginError};

/// A relabel plugin.
///
/// Implement [`relabel_one`](Relabeler::relabel_one) for a per-series rule, or
/// override [`relabel`](Relabeler::relabel) to see the whole batch (to look
/// things up once per batch, or to compare sets). Export the type with
/// [`export_relabeler!`](crate::export_relabeler).
///
/// Contract: the host calls `init` once per instance and then `relabel` any
/// number of times, never concurrently on one instance. Every input set gets
/// an answer: kept (possibly edited) unless the plugin drops it.
pub trait Relabeler: Sized + Send + Sync + 'static {
    /// Builds the plugin from its configuration. A
    /// [`PluginError::InvalidConfig`] fails the plugin's load.
    fn init(config: &Config) -> Result<Self, PluginError>;

    /// Relabels a whole batch. The default applies
    /// [`relabel_one`](Relabeler::relabel_one) to each set.
    fn relabel(&self, batch: &mut Batch) -> Result<(), PluginError> {
        for index in 0..batch.len() {
            self.relabel_one(&mut batch.set_mut(index));
        }
        Ok(())
    }

    /// Relabels one set: edit it through [`LabelSetMut`], or
    /// [`drop_set`](LabelSetMut::drop_set) it. The default keeps it as is.
    fn relabel_one(&self, labels: &mut LabelSetMut<'_>) {
        let _ = labels;
    }
}

/// One label's place in the text: name offset, name length, value offset,
/// value length (the WIT layout of four `u32`s per label).
type Span = [u32; 4];

/// The name offset of a label that was removed.
const REMOVED: u32 = u32::MAX;

/// One label set of a [`Batch`]: a run of the batch's spans, plus labels
/// added to it.
#[derive(Debug, Clone, Default)]
struct SetEntry {
    start: usize,
    len: usize,
    added: Vec<Span>,
    dropped: bool,
}

/// A batch of label sets being relabeled.
///
/// Names and values are `&str` slices of the batch's text; edits append to
/// the text. Sets are addressed by index, `0..len()`, in input order.
#[derive(Debug)]
pub struct Batch {
    text: String,
    /// Four `u32`s per label, as in the WIT `label-batch`.
    spans: Vec<u32>,
    sets: Vec<SetEntry>,
    /// Whether any label was added or removed or any set dropped; if not,
    /// the answer reuses `spans` as they are.
    reshaped: bool,
}

impl Batch {
    /// Unpacks the host's batch. Set lengths beyond the spans given (a host
    /// bug) are cut short rather than panicking.
    pub fn from_wit(batch: LabelBatch) -> Batch {
        let label_count = batch.spans.len() / 4;
        let mut sets = Vec::with_capacity(batch.sets.len());
        let mut start = 0usize;
        for &len in &batch.sets {
            let len = (len as usize).min(label_count.saturating_sub(start));
            sets.push(SetEntry {
                start,
                len,
                added: Vec::new(),
                dropped: false,
            });
            start += len;
        }
        Batch {
            text: batch.text,
            spans: batch.spans,
            sets,
            reshaped: false,
        }
    }

    /// Builds a batch from plain label sets (for tests of a plugin's logic
    /// outside WebAssembly).
    pub fn from_sets<'a>(sets: impl IntoIterator<Item = &'a [(&'a str, &'a str)]>) -> Batch {
        let mut text = String::new();
        let mut spans = Vec::new();
        let mut counts = Vec::new();
        for set in sets {
            counts.push(set.len() as u32);
            for (name, value) in set {
                let (name_offset, name_length) = push_text(&mut text, name);
                let (value_offset, value_length) = push_text(&mut text, value);
                spans.extend([name_offset, name_length, value_offset, value_length]);
            }
        }
        Batch::from_wit(LabelBatch {
            text,
            spans,
            sets: counts,
        })
    }

    /// The number of label sets.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether the batch has no sets.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The set at `index` (`0..len()`), for reading and editing.
    ///
    /// # Panics
    ///
    /// If `index` is out of range, like slice indexing.
    pub fn set_mut(&mut self, index: usize) -> LabelSetMut<'_> {
        assert!(
            index < self.sets.len(),
            "set {index} of a batch of {}",
            self.sets.len()
        );
        LabelSetMut { batch: self, index }
    }

    /// The labels of set `index`, or `None` if it was dropped.
    pub fn get(&self, index: usize) -> Option<Vec<(&str, &str)>> {
        let entry = self.sets.get(index)?;
        (!entry.dropped).then(|| self.live(entry).map(|span| self.resolve(&span)).collect())
    }

    /// Packs the answer for the host: the text with every appended string,
    /// the live spans of each kept set, and `none` for dropped sets.
    pub fn into_wit(self) -> RelabeledBatch {
        if !self.reshaped {
            let sets = self
                .sets
                .iter()
                .map(|entry| Some(entry.len as u32))
                .collect();
            return RelabeledBatch {
                text: self.text,
                spans: self.spans,
                sets,
            };
        }
        let mut spans = Vec::with_capacity(self.spans.len());
        let mut sets = Vec::with_capacity(self.sets.len());
        for entry in &self.sets {
            if entry.dropped {
                sets.push(None);
                continue;
            }
            let before = spans.len();
            for span in self.live(entry) {
                spans.extend(span);
            }
            sets.push(Some(((spans.len() - before) / 4) as u32));
        }
        RelabeledBatch {
            text: self.text,
            spans,
            sets,
        }
    }

    /// The live spans of a set: its original ones not removed, then added ones.
    fn live<'a>(&'a self, entry: &'a SetEntry) -> impl Iterator<Item = Span> + 'a {
        self.spans[entry.start * 4..(entry.start + entry.len) * 4]
            .chunks_exact(4)
            .map(|chunk| [chunk[0], chunk[1], chunk[2], chunk[3]])
            .chain(entry.added.iter().copied())
            .filter(|span| span[0] != REMOVED)
    }

    fn resolve(&self, span: &Span) -> (&str, &str) {
        (self.slice(span[0], span[1]), self.slice(span[2], span[3]))
    }

    fn slice(&self, offset: u32, length: u32) -> &str {
        let start = offset as usize;
        self.text
            .get(start..start + length as usize)
            .unwrap_or_default()
    }
}

/// Appends `s` to `text`, returning its offset and length.
fn push_text(text: &mut String, s: &str) -> (u32, u32) {
    let offset = text.len() as u32;
    text.push_str(s);
    (offset, s.len() as u32)
}

/// One label set of a [`Batch`], borrowed for reading and editing.
#[derive(Debug)]
pub struct LabelSetMut<'a> {
    batch: &'a mut Batch,
    index: usize,
}

/// Where a label's span lives.
enum Slot {
    /// Index of its first `u32` in `Batch::spans`.
    Original(usize),
    /// Index into the set's `added`.
    Added(usize),
}

impl LabelSetMut<'_> {
    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let entry = &self.batch.sets[self.index];
        self.batch
            .live(entry)
            .map(|span| self.batch.resolve(&span))
            .find(|(label, _)| *label == name)
            .map(|(_, value)| value)
    }

    /// Every label, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let entry = &self.batch.sets[self.index];
        self.batch.live(entry).map(|span| self.batch.resolve(&span))
    }

    /// Sets `name` to `value`, replacing an existing value; an empty value
    /// removes the label, as in Prometheus.
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.unset(name);
            return;
        }
        let slot = self.find(name);
        let (value_offset, value_length) = push_text(&mut self.batch.text, value);
        match slot {
            Some(Slot::Original(at)) => {
                self.batch.spans[at + 2] = value_offset;
                self.batch.spans[at + 3] = value_length;
            }
            Some(Slot::Added(at)) => {
                let span = &mut self.batch.sets[self.index].added[at];
                span[2] = value_offset;
                span[3] = value_length;
            }
            None => {
                let (name_offset, name_length) = push_text(&mut self.batch.text, name);
                self.batch.sets[self.index].added.push([
                    name_offset,
                    name_length,
                    value_offset,
                    value_length,
                ]);
                self.batch.reshaped = true;
            }
        }
    }

    /// Removes label `name`; returns whether it was there.
    pub fn unset(&mut self, name: &str) -> bool {
        let slot = self.find(name);
        match slot {
            Some(Slot::Original(at)) => self.batch.spans[at] = REMOVED,
            Some(Slot::Added(at)) => self.batch.sets[self.index].added[at][0] = REMOVED,
            None => return false,
        }
        self.batch.reshaped = true;
        true
    }

    /// Drops the whole set from the answer.
    pub fn drop_set(&mut self) {
        self.batch.sets[self.index].dropped = true;
        self.batch.reshaped = true;
    }

    /// Whether [`drop_set`](Self::drop_set) was called.
    pub fn is_dropped(&self) -> bool {
        self.batch.sets[self.index].dropped
    }

    fn find(&self, name: &str) -> Option<Slot> {
        let batch = &*self.batch;
        let entry = &batch.sets[self.index];
        let matches = |span: &[u32]| span[0] != REMOVED && batch.slice(span[0], span[1]) == name;
        (entry.start..entry.start + entry.len)
            .map(|label| label * 4)
            .find(|&at| matches(&batch.spans[at..at + 4]))
            .map(Slot::Original)
            .or_else(|| {
                entry
                    .added
                    .iter()
                    .position(|span| matches(span))
                    .map(Slot::Added)
            })
    }
}

/// Exports a [`Relabeler`] implementation as the plugin's `relabeler` world.
///
/// Use it once per plugin crate, at the crate root or in any module:
/// `ember_plugin_sdk::export_relabeler!(MyPlugin);`
#[macro_export]
macro_rules! export_relabeler {
    ($plugin:ty) => {
        const _: () = {
            static STATE: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

            struct Export;

            impl $crate::bindings::relabeler::Guest for Export {
                fn init() -> ::std::result::Result<(), $crate::PluginError> {
                    $crate::__private::init(&STATE, <$plugin as $crate::Relabeler>::init)
                }

                fn relabel(
                    batch: $crate::LabelBatch,
                ) -> ::std::result::Result<$crate::RelabeledBatch, $crate::PluginError> {
                    let mut batch = $crate::Batch::from_wit(batch);
                    $crate::Relabeler::relabel($crate::__private::state(&STATE)?, &mut batch)?;
                    Ok(batch.into_wit())
                }
            }

            $crate::bindings::relabeler::export_relabeler_world!(
                Export with_types_in $crate::bindings::relabeler
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_sets(answer: &RelabeledBatch) -> Vec<Option<Vec<(String, String)>>> {
        let mut spans = answer.spans.chunks_exact(4);
        answer
            .sets
            .iter()
            .map(|set| {
                set.map(|n| {
                    (0..n)
                        .map(|_| {
                            let span = spans.next().unwrap();
                            let slice = |o: u32, l: u32| {
                                answer.text[o as usize..(o + l) as usize].to_owned()
                            };
                            (slice(span[0], span[1]), slice(span[2], span[3]))
                        })
                        .collect()
                })
            })
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_untouched_batch_comes_back_unchanged_without_copies() {
        let batch = Batch::from_sets([&[("a", "1"), ("b", "2")][..], &[("c", "3")][..]]);
        let text_len = batch.text.len();
        let answer = batch.into_wit();
        assert_eq!(answer.text.len(), text_len, "nothing appended");
        assert_eq!(
            answer_sets(&answer),
            [
                Some(owned(&[("a", "1"), ("b", "2")])),
                Some(owned(&[("c", "3")]))
            ]
        );
    }

    #[test]
    fn edits_replace_add_remove_and_drop() {
        let mut batch = Batch::from_sets([
            &[("a", "1"), ("b", "2")][..],
            &[("c", "3")][..],
            &[("d", "4")][..],
        ]);
        {
            let mut set = batch.set_mut(0);
            set.set("a", "one");
            set.set("z", "26");
            assert!(set.unset("b"));
            assert!(!set.unset("b"));
            assert_eq!(set.get("a"), Some("one"));
            assert_eq!(set.get("z"), Some("26"));
            assert_eq!(set.get("b"), None);
            set.set("z", "");
            assert_eq!(set.iter().collect::<Vec<_>>(), [("a", "one")]);
        }
        batch.set_mut(1).drop_set();
        batch.set_mut(2).set("d", "four");
        assert_eq!(batch.get(1), None);
        assert_eq!(
            answer_sets(&batch.into_wit()),
            [
                Some(owned(&[("a", "one")])),
                None,
                Some(owned(&[("d", "four")]))
            ]
        );
    }
}
