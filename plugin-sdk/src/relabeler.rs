//! The `relabeler` world: rewrite or drop label sets, one batch per call.
//!
//! The batch arrives packed (`label-batch` in WIT: one string and two flat
//! lists) and [`Batch`] edits it in place: reading a label borrows from the
//! batch's text, and a new value is appended to that text, so a plugin that
//! changes few labels copies almost nothing. See the WIT documentation of
//! `label-batch` for why the contract is shaped this way.

use crate::bindings::relabeler::ember::plugin::types::{LabelBatch, LabelSpan, RelabeledBatch};
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

/// A span that no longer names a label (the label was removed).
const REMOVED: u32 = u32::MAX;

/// One label set of a [`Batch`]: a run of the batch's spans, plus labels
/// added to it.
#[derive(Debug, Clone, Default)]
struct SetEntry {
    start: usize,
    len: usize,
    added: Vec<LabelSpan>,
    dropped: bool,
}

/// A batch of label sets being relabeled.
///
/// Names and values are `&str` slices of the batch's text; edits append to
/// the text. Sets are addressed by index, `0..len()`, in input order.
#[derive(Debug)]
pub struct Batch {
    text: String,
    labels: Vec<LabelSpan>,
    sets: Vec<SetEntry>,
}

impl Batch {
    /// Unpacks the host's batch. Spans from the host are valid; a span that
    /// is not (a host bug) reads as an empty string rather than panicking.
    pub fn from_wit(batch: LabelBatch) -> Batch {
        let mut sets = Vec::with_capacity(batch.sets.len());
        let mut start = 0usize;
        for &len in &batch.sets {
            let len = len as usize;
            let len = len.min(batch.labels.len().saturating_sub(start));
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
            labels: batch.labels,
            sets,
        }
    }

    /// Builds a batch from plain label sets (for tests of a plugin's logic
    /// outside WebAssembly).
    pub fn from_sets<'a>(sets: impl IntoIterator<Item = &'a [(&'a str, &'a str)]>) -> Batch {
        let mut text = String::new();
        let mut labels = Vec::new();
        let mut counts = Vec::new();
        for set in sets {
            counts.push(set.len() as u32);
            for (name, value) in set {
                let name_span = push_text(&mut text, name);
                let value_span = push_text(&mut text, value);
                labels.push(LabelSpan {
                    name_offset: name_span.0,
                    name_length: name_span.1,
                    value_offset: value_span.0,
                    value_length: value_span.1,
                });
            }
        }
        Batch::from_wit(LabelBatch {
            text,
            labels,
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
        (!entry.dropped).then(|| self.spans(entry).map(|span| self.resolve(span)).collect())
    }

    /// Packs the answer for the host: the text with every appended string,
    /// the live spans of each kept set, and `none` for dropped sets.
    pub fn into_wit(self) -> RelabeledBatch {
        let mut labels = Vec::with_capacity(self.labels.len());
        let mut sets = Vec::with_capacity(self.sets.len());
        for entry in &self.sets {
            if entry.dropped {
                sets.push(None);
                continue;
            }
            let before = labels.len();
            labels.extend(self.spans(entry).copied());
            sets.push(Some((labels.len() - before) as u32));
        }
        RelabeledBatch {
            text: self.text,
            labels,
            sets,
        }
    }

    /// The live spans of a set: its original ones not removed, then added ones.
    fn spans<'a>(&'a self, entry: &'a SetEntry) -> impl Iterator<Item = &'a LabelSpan> + 'a {
        self.labels[entry.start..entry.start + entry.len]
            .iter()
            .chain(entry.added.iter())
            .filter(|span| span.name_offset != REMOVED)
    }

    fn resolve(&self, span: &LabelSpan) -> (&str, &str) {
        (
            self.slice(span.name_offset, span.name_length),
            self.slice(span.value_offset, span.value_length),
        )
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

impl LabelSetMut<'_> {
    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let entry = &self.batch.sets[self.index];
        self.batch
            .spans(entry)
            .map(|span| self.batch.resolve(span))
            .find(|(label, _)| *label == name)
            .map(|(_, value)| value)
    }

    /// Every label, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let entry = &self.batch.sets[self.index];
        self.batch.spans(entry).map(|span| self.batch.resolve(span))
    }

    /// Sets `name` to `value`, replacing an existing value; an empty value
    /// removes the label, as in Prometheus.
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.unset(name);
            return;
        }
        let (value_offset, value_length) = push_text(&mut self.batch.text, value);
        if let Some(span) = self.find_mut(name) {
            span.value_offset = value_offset;
            span.value_length = value_length;
            return;
        }
        let (name_offset, name_length) = push_text(&mut self.batch.text, name);
        self.batch.sets[self.index].added.push(LabelSpan {
            name_offset,
            name_length,
            value_offset,
            value_length,
        });
    }

    /// Removes label `name`; returns whether it was there.
    pub fn unset(&mut self, name: &str) -> bool {
        match self.find_mut(name) {
            Some(span) => {
                span.name_offset = REMOVED;
                true
            }
            None => false,
        }
    }

    /// Drops the whole set from the answer.
    pub fn drop_set(&mut self) {
        self.batch.sets[self.index].dropped = true;
    }

    /// Whether [`drop_set`](Self::drop_set) was called.
    pub fn is_dropped(&self) -> bool {
        self.batch.sets[self.index].dropped
    }

    fn find_mut(&mut self, name: &str) -> Option<&mut LabelSpan> {
        let batch = &mut *self.batch;
        let entry = &mut batch.sets[self.index];
        let text = &batch.text;
        let matches = |span: &LabelSpan| {
            span.name_offset != REMOVED
                && text
                    .get(span.name_offset as usize..(span.name_offset + span.name_length) as usize)
                    == Some(name)
        };
        let original = &mut batch.labels[entry.start..entry.start + entry.len];
        if let Some(span) = original.iter_mut().find(|span| matches(span)) {
            return Some(span);
        }
        entry.added.iter_mut().find(|span| matches(span))
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
        let mut labels = answer.labels.iter();
        answer
            .sets
            .iter()
            .map(|set| {
                set.map(|n| {
                    (0..n)
                        .map(|_| {
                            let span = labels.next().unwrap();
                            let slice = |o: u32, l: u32| {
                                answer.text[o as usize..(o + l) as usize].to_owned()
                            };
                            (
                                slice(span.name_offset, span.name_length),
                                slice(span.value_offset, span.value_length),
                            )
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
