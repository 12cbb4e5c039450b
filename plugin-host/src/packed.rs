//! Packing label sets for the `relabeler` world and unpacking its answer.
//!
//! The WIT contract passes a relabel batch as one string and two flat lists
//! (`label-batch`), so a 10,000-series scrape crosses into the sandbox as
//! three copies instead of hundreds of thousands of guest allocations. On
//! the way back, a plugin usually answers with the input text plus appended
//! new strings; then every label whose span is unchanged is rebuilt by moving
//! the caller's original `String`, and only new strings are copied.

use crate::PluginCallError;
use crate::bindings::types::{LabelBatch, RelabeledBatch};

/// One label's place in a text: name offset, name length, value offset,
/// value length (the WIT layout of four `u32`s per label).
type Span = [u32; 4];
use crate::metrics::Labels;

/// Packs label sets into a `label-batch`.
pub(crate) fn pack(batch: &[Labels]) -> Result<LabelBatch, PluginCallError> {
    let text_len: usize = batch
        .iter()
        .flat_map(|labels| labels.iter().map(|(name, value)| name.len() + value.len()))
        .sum();
    let too_big = || {
        PluginCallError::Internal(format!(
            "a relabel batch of {text_len} bytes exceeds the 4 GiB a packed batch can address"
        ))
    };
    if u32::try_from(text_len).is_err() {
        return Err(too_big());
    }
    let label_count: usize = batch.iter().map(Vec::len).sum();
    let mut text = String::with_capacity(text_len);
    let mut spans: Vec<u32> = Vec::with_capacity(label_count * 4);
    let mut sets = Vec::with_capacity(batch.len());
    for set in batch {
        sets.push(u32::try_from(set.len()).map_err(|_| too_big())?);
        for (name, value) in set {
            // Both fit: the whole text is below u32::MAX bytes.
            let name_offset = text.len() as u32;
            text.push_str(name);
            let value_offset = text.len() as u32;
            text.push_str(value);
            spans.extend([
                name_offset,
                name.len() as u32,
                value_offset,
                value.len() as u32,
            ]);
        }
    }
    Ok(LabelBatch { text, spans, sets })
}

/// Unpacks a plugin's answer to `input` (packed as `packed`): one entry per
/// input set, `None` where dropped, labels sorted by name.
pub(crate) fn unpack(
    input: Vec<Labels>,
    packed: &LabelBatch,
    answer: RelabeledBatch,
    max_output_bytes: usize,
) -> Result<Vec<Option<Labels>>, PluginCallError> {
    if answer.sets.len() != input.len() {
        return Err(PluginCallError::InvalidOutput(format!(
            "relabel answered {} sets for {} label sets",
            answer.sets.len(),
            input.len()
        )));
    }
    if !answer.spans.len().is_multiple_of(4) {
        return Err(PluginCallError::InvalidOutput(format!(
            "relabel answered {} span entries, not a multiple of four",
            answer.spans.len()
        )));
    }
    let output_bytes = answer
        .text
        .len()
        .saturating_add(answer.spans.len().saturating_mul(4));
    if output_bytes > max_output_bytes {
        return Err(PluginCallError::InvalidOutput(format!(
            "output of {output_bytes} bytes exceeds the limit of {max_output_bytes} bytes"
        )));
    }
    // Spans of the input text mean the same in the answer only if the answer
    // kept that text as its prefix.
    let shares_input_text = answer.text.as_bytes().starts_with(packed.text.as_bytes());
    let text = answer.text.as_str();
    let mut spans = answer.spans.chunks_exact(4).map(as_span);
    let input_spans: Vec<Span> = packed.spans.chunks_exact(4).map(as_span).collect();
    let mut input_spans = input_spans.as_slice();
    let mut out = Vec::with_capacity(input.len());
    for (kept, mut original) in answer.sets.iter().zip(input) {
        let (set_spans, rest) = input_spans.split_at(original.len());
        input_spans = rest;
        let Some(count) = kept else {
            out.push(None);
            continue;
        };
        let mut labels: Labels = Vec::with_capacity(*count as usize);
        for position in 0..*count as usize {
            let span = spans.next().ok_or_else(|| {
                PluginCallError::InvalidOutput(
                    "relabel answered fewer labels than its sets count".to_owned(),
                )
            })?;
            let reuse = |field: fn(&Span) -> (u32, u32)| {
                shares_input_text
                    .then(|| find_span(set_spans, position, field(&span), field))
                    .flatten()
            };
            let name = match reuse(|s| (s[0], s[1])) {
                Some(index) => take_if_intact(&mut original[index].0, span[1])
                    .map_or_else(|| slice(text, span[0], span[1]), Ok)?,
                None => slice(text, span[0], span[1])?,
            };
            let value = match reuse(|s| (s[2], s[3])) {
                Some(index) => take_if_intact(&mut original[index].1, span[3])
                    .map_or_else(|| slice(text, span[2], span[3]), Ok)?,
                None => slice(text, span[2], span[3])?,
            };
            labels.push((name, value));
        }
        sort_and_check(&mut labels)?;
        out.push(Some(labels));
    }
    if spans.next().is_some() {
        return Err(PluginCallError::InvalidOutput(
            "relabel answered more labels than its sets count".to_owned(),
        ));
    }
    Ok(out)
}

/// The index of the input label whose span (as selected by `field`) is
/// `wanted`, trying the same position first since most plugins keep order.
fn find_span(
    set_spans: &[Span],
    position: usize,
    wanted: (u32, u32),
    field: fn(&Span) -> (u32, u32),
) -> Option<usize> {
    if set_spans.get(position).map(field) == Some(wanted) {
        return Some(position);
    }
    set_spans.iter().position(|span| field(span) == wanted)
}

fn as_span(chunk: &[u32]) -> Span {
    [chunk[0], chunk[1], chunk[2], chunk[3]]
}

/// Moves the original string out unless an earlier label already took it
/// (a plugin may copy one value into two labels).
fn take_if_intact(original: &mut String, length: u32) -> Option<String> {
    (original.len() == length as usize).then(|| std::mem::take(original))
}

fn slice(text: &str, offset: u32, length: u32) -> Result<String, PluginCallError> {
    let start = offset as usize;
    start
        .checked_add(length as usize)
        .and_then(|end| text.get(start..end))
        .map(str::to_owned)
        .ok_or_else(|| {
            PluginCallError::InvalidOutput(format!(
                "span {offset}+{length} is outside the answer's {} bytes of text or not on a \
                 character boundary",
                text.len()
            ))
        })
}

/// Sorts a returned label set by name and rejects repeated names.
pub(crate) fn sort_and_check(labels: &mut Labels) -> Result<(), PluginCallError> {
    if labels.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return Ok(());
    }
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    match labels.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        Some(pair) => Err(PluginCallError::InvalidOutput(format!(
            "label {:?} appears twice in one label set",
            pair[0].0
        ))),
        None => Ok(()),
    }
}

/// A relabel batch packed by the caller, straight from its own label
/// storage: no `String` per label on the way in. Fill it with
/// [`push_set`](Self::push_set) (labels sorted by name, names unique, as the
/// WIT contract promises plugins) and pass it to
/// [`crate::Plugin::relabel_packed`]; the answer hands the buffers back for
/// the next batch ([`PackedAnswer::into_batch`]).
#[derive(Debug, Clone)]
pub struct PackedBatch {
    pub(crate) inner: LabelBatch,
}

impl Default for PackedBatch {
    fn default() -> PackedBatch {
        PackedBatch {
            inner: LabelBatch {
                text: String::new(),
                spans: Vec::new(),
                sets: Vec::new(),
            },
        }
    }
}

impl PackedBatch {
    /// An empty batch.
    pub fn new() -> PackedBatch {
        PackedBatch::default()
    }

    /// An empty batch with room for `sets` label sets of `labels` labels
    /// and `text_bytes` bytes of names and values in all, so that filling it
    /// does not reallocate (a scrape's batch is megabytes).
    pub fn with_capacity(sets: usize, labels: usize, text_bytes: usize) -> PackedBatch {
        PackedBatch {
            inner: LabelBatch {
                text: String::with_capacity(text_bytes),
                spans: Vec::with_capacity(labels * 4),
                sets: Vec::with_capacity(sets),
            },
        }
    }

    /// Labels in the batch, and bytes of text: a capacity hint for the next
    /// batch of the same source.
    pub fn size(&self) -> (usize, usize) {
        (self.inner.spans.len() / 4, self.inner.text.len())
    }

    /// Appends one label set.
    pub fn push_set<'a>(
        &mut self,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), PluginCallError> {
        let batch = &mut self.inner;
        let mut count: u32 = 0;
        for (name, value) in labels {
            let name_offset = batch.text.len();
            batch.text.push_str(name);
            let value_offset = batch.text.len();
            batch.text.push_str(value);
            if u32::try_from(batch.text.len()).is_err() {
                return Err(PluginCallError::Internal(
                    "a relabel batch exceeds the 4 GiB a packed batch can address".to_owned(),
                ));
            }
            // Both fit: the whole text is below u32::MAX bytes.
            batch.spans.extend([
                name_offset as u32,
                name.len() as u32,
                value_offset as u32,
                value.len() as u32,
            ]);
            count += 1;
        }
        batch.sets.push(count);
        Ok(())
    }

    /// Label sets in the batch.
    pub fn len(&self) -> usize {
        self.inner.sets.len()
    }

    /// Whether the batch has no label sets.
    pub fn is_empty(&self) -> bool {
        self.inner.sets.is_empty()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.inner.text.clear();
        self.inner.spans.clear();
        self.inner.sets.clear();
    }
}

/// A plugin's checked answer to a [`PackedBatch`]: per input set, dropped or
/// the labels it kept, which borrow the answer's text. Every span has been
/// checked (inside the text, on character boundaries), names are unique
/// within each set, and the total size is within the plugin's output limit.
#[derive(Debug)]
pub struct PackedAnswer {
    input: PackedBatch,
    answer: RelabeledBatch,
    /// Per input set: `None` if dropped, else the index of its first span
    /// (in fours) in `answer.spans`, and whether it equals the input set.
    sets: Vec<Option<(usize, bool)>>,
}

/// One kept label set of a [`PackedAnswer`].
#[derive(Debug, Clone, Copy)]
pub struct AnswerSet<'a> {
    text: &'a str,
    spans: &'a [u32],
    unchanged: bool,
}

impl<'a> AnswerSet<'a> {
    /// Whether the plugin returned the input set exactly (same labels, same
    /// order, unchanged text): the caller may keep what it already has.
    pub fn is_unchanged(&self) -> bool {
        self.unchanged
    }

    /// Labels in the set.
    pub fn len(&self) -> usize {
        self.spans.len() / 4
    }

    /// Whether the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The labels as the plugin returned them (in its order; sort them when
    /// the set changed).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let text = self.text;
        self.spans.chunks_exact(4).map(move |span| {
            // Checked when the answer was built.
            let name = &text[span[0] as usize..(span[0] + span[1]) as usize];
            let value = &text[span[2] as usize..(span[2] + span[3]) as usize];
            (name, value)
        })
    }
}

impl PackedAnswer {
    pub(crate) fn new(
        input: PackedBatch,
        answer: RelabeledBatch,
        max_output_bytes: usize,
    ) -> Result<PackedAnswer, PluginCallError> {
        let packed = &input.inner;
        if answer.sets.len() != packed.sets.len() {
            return Err(PluginCallError::InvalidOutput(format!(
                "relabel answered {} sets for {} label sets",
                answer.sets.len(),
                packed.sets.len()
            )));
        }
        if !answer.spans.len().is_multiple_of(4) {
            return Err(PluginCallError::InvalidOutput(format!(
                "relabel answered {} span entries, not a multiple of four",
                answer.spans.len()
            )));
        }
        let output_bytes = answer
            .text
            .len()
            .saturating_add(answer.spans.len().saturating_mul(4));
        if output_bytes > max_output_bytes {
            return Err(PluginCallError::InvalidOutput(format!(
                "output of {output_bytes} bytes exceeds the limit of {max_output_bytes} bytes"
            )));
        }
        let shares_input_text = answer.text.as_bytes().starts_with(packed.text.as_bytes());
        let total_spans = answer.spans.len() / 4;
        let mut sets = Vec::with_capacity(answer.sets.len());
        let mut next = 0usize;
        let mut input_next = 0usize;
        let mut names: Vec<&str> = Vec::new();
        for (kept, input_count) in answer.sets.iter().zip(&packed.sets) {
            let input_spans =
                &packed.spans[input_next * 4..(input_next + *input_count as usize) * 4];
            input_next += *input_count as usize;
            let Some(count) = kept else {
                sets.push(None);
                continue;
            };
            let count = *count as usize;
            if next + count > total_spans {
                return Err(PluginCallError::InvalidOutput(
                    "relabel answered fewer labels than its sets count".to_owned(),
                ));
            }
            let spans = &answer.spans[next * 4..(next + count) * 4];
            let unchanged = shares_input_text && spans == input_spans;
            if !unchanged {
                names.clear();
                for span in spans.chunks_exact(4) {
                    let name = span_text(&answer.text, span[0], span[1])?;
                    span_text(&answer.text, span[2], span[3])?;
                    names.push(name);
                }
                names.sort_unstable();
                if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
                    return Err(PluginCallError::InvalidOutput(format!(
                        "label {:?} appears twice in one label set",
                        pair[0]
                    )));
                }
            }
            sets.push(Some((next, unchanged)));
            next += count;
        }
        if next != total_spans {
            return Err(PluginCallError::InvalidOutput(
                "relabel answered more labels than its sets count".to_owned(),
            ));
        }
        Ok(PackedAnswer {
            input,
            answer,
            sets,
        })
    }

    /// Answers, one per input set.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The kept set for input `index`, or `None` if the plugin dropped it.
    pub fn get(&self, index: usize) -> Option<AnswerSet<'_>> {
        let (start, unchanged) = (*self.sets.get(index)?)?;
        let count = self.answer.sets[index].unwrap_or(0) as usize;
        Some(AnswerSet {
            text: &self.answer.text,
            spans: &self.answer.spans[start * 4..(start + count) * 4],
            unchanged,
        })
    }

    /// The input batch, emptied, to fill again.
    pub fn into_batch(mut self) -> PackedBatch {
        self.input.clear();
        self.input
    }
}

/// The text of a span, checked.
fn span_text(text: &str, offset: u32, length: u32) -> Result<&str, PluginCallError> {
    let start = offset as usize;
    start
        .checked_add(length as usize)
        .and_then(|end| text.get(start..end))
        .ok_or_else(|| {
            PluginCallError::InvalidOutput(format!(
                "span {offset}+{length} is outside the answer's {} bytes of text or not on a \
                 character boundary",
                text.len()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn span(name: (u32, u32), value: (u32, u32)) -> Span {
        [name.0, name.1, value.0, value.1]
    }

    #[test]
    fn pack_lays_sets_out_consecutively() {
        let packed = pack(&[labels(&[("a", "1"), ("bb", "22")]), labels(&[])]).unwrap();
        assert_eq!(packed.text, "a1bb22");
        assert_eq!(packed.sets, [2, 0]);
        assert_eq!(packed.spans, [0, 1, 1, 1, 2, 2, 4, 2]);
    }

    #[test]
    fn an_echoed_batch_unpacks_to_the_input() {
        let input = vec![labels(&[("a", "1"), ("b", "2")]), labels(&[("c", "3")])];
        let packed = pack(&input).unwrap();
        let answer = RelabeledBatch {
            text: packed.text.clone(),
            spans: packed.spans.clone(),
            sets: vec![Some(2), Some(1)],
        };
        let out = unpack(input.clone(), &packed, answer, 1 << 20).unwrap();
        assert_eq!(out, input.into_iter().map(Some).collect::<Vec<_>>());
    }

    #[test]
    fn edits_appended_to_the_text_are_read_and_order_is_restored() {
        let input = vec![labels(&[("a", "1"), ("b", "2")]), labels(&[("c", "3")])];
        let packed = pack(&input).unwrap();
        // Set 0: b reuses a's value "1", a gets "new" and comes last; set 1 dropped.
        let text = format!("{}new", packed.text);
        let answer = RelabeledBatch {
            text,
            spans: [span((2, 1), (1, 1)), span((0, 1), (6, 3))].concat(),
            sets: vec![Some(2), None],
        };
        let out = unpack(input, &packed, answer, 1 << 20).unwrap();
        assert_eq!(out, [Some(labels(&[("a", "new"), ("b", "1")])), None]);
    }

    #[test]
    fn a_value_copied_into_two_labels_is_kept_in_both() {
        let input = vec![labels(&[("a", "x")])];
        let packed = pack(&input).unwrap();
        let answer = RelabeledBatch {
            text: format!("{}b", packed.text),
            spans: [span((0, 1), (1, 1)), span((2, 1), (1, 1))].concat(),
            sets: vec![Some(2)],
        };
        let out = unpack(input, &packed, answer, 1 << 20).unwrap();
        assert_eq!(out, [Some(labels(&[("a", "x"), ("b", "x")]))]);
    }

    #[test]
    fn a_different_text_is_read_rather_than_trusted() {
        let input = vec![labels(&[("a", "1")])];
        let packed = pack(&input).unwrap();
        let answer = RelabeledBatch {
            text: "z9".to_owned(),
            spans: packed.spans.clone(),
            sets: vec![Some(1)],
        };
        let out = unpack(input, &packed, answer, 1 << 20).unwrap();
        assert_eq!(out, [Some(labels(&[("z", "9")]))]);
    }

    #[test]
    fn contract_violations_are_reported() {
        let input = vec![labels(&[("a", "1")])];
        let packed = pack(&input).unwrap();
        let answer = |spans: Vec<Span>, sets: Vec<Option<u32>>| RelabeledBatch {
            text: "a1é".to_owned(),
            spans: spans.concat(),
            sets,
        };
        let cases = [
            (answer(vec![], vec![]), "answered 0 sets for 1"),
            (answer(vec![], vec![Some(1)]), "fewer labels"),
            (
                answer(vec![span((0, 1), (1, 1)); 2], vec![Some(1)]),
                "more labels",
            ),
            (answer(vec![span((0, 1), (9, 1))], vec![Some(1)]), "outside"),
            (
                answer(vec![span((0, 1), (3, 1))], vec![Some(1)]),
                "character boundary",
            ),
            (
                answer(vec![span((0, 1), (1, 1)); 2], vec![Some(2)]),
                "appears twice",
            ),
        ];
        for (answer, expected) in cases {
            match unpack(input.clone(), &packed, answer, 1 << 20) {
                Err(PluginCallError::InvalidOutput(message)) => {
                    assert!(message.contains(expected), "{message:?} lacks {expected:?}")
                }
                other => panic!("expected {expected:?}, got {other:?}"),
            }
        }
        let ragged = RelabeledBatch {
            text: "a1".to_owned(),
            spans: vec![0, 1, 1],
            sets: vec![Some(1)],
        };
        assert!(
            matches!(unpack(input.clone(), &packed, ragged, 1 << 20), Err(PluginCallError::InvalidOutput(m)) if m.contains("multiple of four"))
        );
        let big = answer(vec![span((0, 1), (1, 1))], vec![Some(1)]);
        assert!(matches!(
            unpack(input, &packed, big, 4),
            Err(PluginCallError::InvalidOutput(_))
        ));
    }

    fn packed(sets: &[&[(&str, &str)]]) -> PackedBatch {
        let mut batch = PackedBatch::new();
        for set in sets {
            batch.push_set(set.iter().copied()).unwrap();
        }
        batch
    }

    #[test]
    fn packed_answers_tell_unchanged_sets_from_rewritten_ones() {
        let batch = packed(&[&[("a", "1"), ("b", "2")], &[("c", "3")], &[("d", "4")]]);
        assert_eq!(batch.inner.text, "a1b2c3d4");
        let answer = RelabeledBatch {
            text: format!("{}new", batch.inner.text),
            spans: [
                span((0, 1), (1, 1)),
                span((2, 1), (3, 1)),
                span((4, 1), (8, 3)),
            ]
            .concat(),
            sets: vec![Some(2), Some(1), None],
        };
        let answer = PackedAnswer::new(batch, answer, 1 << 20).unwrap();
        let first = answer.get(0).unwrap();
        assert!(first.is_unchanged());
        assert_eq!(first.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        let second = answer.get(1).unwrap();
        assert!(!second.is_unchanged());
        assert_eq!(second.iter().collect::<Vec<_>>(), [("c", "new")]);
        assert!(answer.get(2).is_none());
        assert!(answer.into_batch().is_empty());
    }

    #[test]
    fn packed_answers_are_checked() {
        let batch = || packed(&[&[("a", "1")]]);
        let answer = |spans: Vec<Span>, sets: Vec<Option<u32>>| RelabeledBatch {
            text: "a1é".to_owned(),
            spans: spans.concat(),
            sets,
        };
        let cases = [
            (answer(vec![], vec![]), "answered 0 sets for 1"),
            (answer(vec![], vec![Some(1)]), "fewer labels"),
            (
                answer(vec![span((0, 1), (1, 1)); 2], vec![Some(1)]),
                "more labels",
            ),
            (answer(vec![span((0, 1), (9, 1))], vec![Some(1)]), "outside"),
            (
                answer(vec![span((0, 1), (3, 1))], vec![Some(1)]),
                "character boundary",
            ),
            (
                answer(vec![span((0, 1), (1, 1)); 2], vec![Some(2)]),
                "appears twice",
            ),
        ];
        for (answer, expected) in cases {
            match PackedAnswer::new(batch(), answer, 1 << 20) {
                Err(PluginCallError::InvalidOutput(message)) => {
                    assert!(message.contains(expected), "{message:?} lacks {expected:?}")
                }
                other => panic!("expected {expected:?}, got {other:?}"),
            }
        }
        let big = answer(vec![span((0, 1), (1, 1))], vec![Some(1)]);
        assert!(PackedAnswer::new(batch(), big, 4).is_err());
    }
}
