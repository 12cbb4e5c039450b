//! Label sets: the identity of a time series.
//!
//! A series is identified by its [`Labels`]: a set of `name="value"` pairs,
//! unique by name and kept sorted by name. A server holds millions of them,
//! so the representation is what Prometheus calls `stringlabels`: every pair
//! is packed into **one** immutable, reference-counted byte buffer, so a
//! label set costs one heap allocation (instead of one per string) and a
//! clone is an atomic increment.
//!
//! Principal items:
//! - [`Labels`]: the immutable, sorted set, with lookups, stable hashing
//!   ([`Labels::hash`]) for sharding and PromQL grouping, Prometheus-style
//!   [`Display`](std::fmt::Display) and JSON (de)serialisation as an object.
//! - [`LabelsBuilder`]: a mutable overlay over a base set (set/del/keep),
//!   used by relabeling and the scrape loop.
//! - name validation: [`is_valid_legacy_label_name`],
//!   [`is_valid_legacy_metric_name`] and [`NameValidationScheme`].
//!
//! ```
//! use ember_model::labels::{Labels, LabelsBuilder};
//!
//! let series = Labels::new([("job", "node"), ("__name__", "up"), ("instance", "a:9100")])?;
//! assert_eq!(series.metric_name(), Some("up"));
//! assert_eq!(series.get("job"), Some("node"));
//! assert_eq!(series.to_string(), r#"up{instance="a:9100", job="node"}"#);
//!
//! let mut builder = LabelsBuilder::new(series.clone());
//! builder.set("job", "blackbox").del("instance");
//! assert_eq!(builder.labels().to_string(), r#"up{job="blackbox"}"#);
//! # Ok::<(), ember_model::labels::LabelsError>(())
//! ```
//!
//! # Encoding
//!
//! ```text
//! uvarint(count) uvarint(L)                       header
//! uvarint(len(name₀)) uvarint(len(value₀)) ...   lengths, L bytes
//! name₀ 0xff value₀ 0xff name₁ 0xff value₁ 0xff  records
//! ```
//!
//! Entries are sorted by name (bytewise, which for UTF-8 is code-point
//! order, the order Go's string comparison gives). The records region is
//! byte for byte the input of Prometheus's `Labels.Hash` (`0xff` never
//! occurs in UTF-8), so [`Labels::hash`] is one xxHash64 call over a slice
//! with no copying; the separate lengths keep lookups from scanning for
//! separators. The encoding is canonical: two label sets are equal iff
//! their buffers are equal, which makes [`Eq`] and [`Hash`] a memcmp and a
//! byte hash. It is private and may change; it is never persisted.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh64::{Xxh64, xxh64};

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// The byte that separates names and values in the stable hashes; `0xff`
/// never occurs in UTF-8, so `{a="bc"}` and `{ab="c"}` hash differently.
const HASH_SEPARATOR: u8 = 0xff;

/// Errors from building a label set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelsError {
    /// The same label name was given twice.
    #[error("duplicate label name {name:?}")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
}

/// An immutable label set, sorted by name, unique by name, stored in one
/// allocation. See the [module docs](self) for the representation.
///
/// Cloning is cheap (an atomic reference-count increment); the empty set
/// allocates nothing. Labels are `Send + Sync` and may be shared freely.
///
/// Empty values are stored as given by [`Labels::new`] (Prometheus treats a
/// label with an empty value as absent; the [`LabelsBuilder`] drops them, and
/// ingestion paths should build through it or validate).
#[derive(Clone, Default)]
pub struct Labels {
    // `None` is the empty set, so `Labels::default()` and `Labels::EMPTY`
    // never allocate.
    data: Option<Arc<[u8]>>,
}

impl Labels {
    /// The empty label set.
    pub const EMPTY: Labels = Labels { data: None };

    /// Builds a label set from `(name, value)` pairs in any order.
    ///
    /// # Errors
    /// [`LabelsError::DuplicateName`] when a name occurs more than once.
    pub fn new<I, N, V>(pairs: I) -> Result<Self, LabelsError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut pairs: Vec<(N, V)> = pairs.into_iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        if let Some(window) = pairs
            .windows(2)
            .find(|w| w[0].0.as_ref() == w[1].0.as_ref())
        {
            return Err(LabelsError::DuplicateName {
                name: window[0].0.as_ref().to_owned(),
            });
        }
        Ok(Self::from_sorted_unique(
            pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())),
        ))
    }

    /// Encodes pairs that are already sorted by name and unique.
    ///
    /// The iterator is walked twice (sizes, then bytes) so the buffer is
    /// allocated exactly once at its final size.
    fn from_sorted_unique<'a, I>(pairs: I) -> Self
    where
        I: Iterator<Item = (&'a str, &'a str)> + Clone,
    {
        let mut count = 0usize;
        let mut lengths_size = 0usize;
        let mut records_size = 0usize;
        for (name, value) in pairs.clone() {
            count += 1;
            lengths_size += uvarint_len(name.len()) + uvarint_len(value.len());
            records_size += name.len() + value.len() + 2;
        }
        if count == 0 {
            return Self::EMPTY;
        }
        let records_start = uvarint_len(count) + uvarint_len(lengths_size) + lengths_size;
        let size = records_start + records_size;
        let data = Arc::<[u8]>::new_zeroed_slice(size);
        // SAFETY: `u8` has no invalid bit patterns, so a zeroed buffer is
        // an initialised buffer.
        let mut data = unsafe { data.assume_init() };
        let Some(buf) = Arc::get_mut(&mut data) else {
            // A freshly allocated Arc is unique; this branch is unreachable.
            unreachable!("fresh Arc is uniquely owned");
        };
        let mut lengths_pos = put_uvarint(buf, 0, count);
        lengths_pos = put_uvarint(buf, lengths_pos, lengths_size);
        let mut records_pos = records_start;
        for (name, value) in pairs {
            lengths_pos = put_uvarint(buf, lengths_pos, name.len());
            lengths_pos = put_uvarint(buf, lengths_pos, value.len());
            records_pos = put_record_part(buf, records_pos, name.as_bytes());
            records_pos = put_record_part(buf, records_pos, value.as_bytes());
        }
        debug_assert_eq!(lengths_pos, records_start);
        debug_assert_eq!(records_pos, size);
        Labels { data: Some(data) }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        self.data.as_deref().unwrap_or(&[])
    }

    #[inline]
    fn entries(&self) -> Entries<'_> {
        Entries::new(self.bytes())
    }

    /// The number of labels.
    #[inline]
    pub fn len(&self) -> usize {
        match self.bytes() {
            [] => 0,
            buf => read_uvarint(buf, 0).0,
        }
    }

    /// Whether the set has no labels.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_none()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let wanted = name.as_bytes();
        for entry in self.entries() {
            match entry.name.cmp(wanted) {
                Ordering::Equal => return Some(encoded_str(entry.value)),
                // Names are sorted: once past `name`, it is absent.
                Ordering::Greater => return None,
                Ordering::Less => {}
            }
        }
        None
    }

    /// Whether a label called `name` is present (whatever its value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The value of `__name__`, if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The pairs in ascending name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            entries: self.entries(),
        }
    }

    /// The names in ascending order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(name, _)| name)
    }

    /// Heap bytes owned by this set (the shared buffer plus the reference
    /// counts), for memory accounting. Shared clones report the same bytes.
    pub fn heap_size(&self) -> usize {
        match &self.data {
            None => 0,
            // `ArcInner` holds the strong and weak counts before the data,
            // and its size is padded to their alignment.
            Some(data) => (data.len() + 2 * std::mem::size_of::<usize>())
                .next_multiple_of(std::mem::align_of::<usize>()),
        }
    }

    /// A stable 64-bit hash: xxHash64 (seed 0) over `name 0xff value 0xff`
    /// for every label in order, bit-identical to Prometheus's
    /// `labels.Labels.Hash`. Used for sharding (`hashmod`, remote-write
    /// shards) where the value must agree across processes and versions.
    pub fn hash(&self) -> u64 {
        xxh64(self.entries().records, 0)
    }

    /// The stable hash over only the labels whose names are in `names`
    /// (any order), as PromQL's `by (...)` grouping needs. Same algorithm as
    /// [`Labels::hash`], so a set restricted to `names` hashes alike.
    pub fn hash_for_labels<S: AsRef<str>>(&self, names: &[S]) -> u64 {
        records_hash(
            self.entries()
                .filter(|entry| names.iter().any(|n| n.as_ref().as_bytes() == entry.name)),
        )
    }

    /// The stable hash over the labels whose names are **not** in `names`,
    /// always leaving out `__name__`, as PromQL's `without (...)` and
    /// vector matching need (Prometheus's `HashWithoutLabels`).
    pub fn hash_without_labels<S: AsRef<str>>(&self, names: &[S]) -> u64 {
        records_hash(self.entries().filter(|entry| {
            entry.name != METRIC_NAME.as_bytes()
                && !names.iter().any(|n| n.as_ref().as_bytes() == entry.name)
        }))
    }

    /// This set without `__name__` (a clone of `self` when it has none), as
    /// PromQL functions and operators produce.
    pub fn drop_metric_name(&self) -> Labels {
        if !self.has(METRIC_NAME) {
            return self.clone();
        }
        Self::from_sorted_unique(self.iter().filter(|(name, _)| *name != METRIC_NAME))
    }

    /// This set restricted to the labels whose names are in `names`.
    pub fn keep_only<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Self::from_sorted_unique(
            self.iter()
                .filter(|(name, _)| names.iter().any(|n| n.as_ref() == *name)),
        )
    }

    /// This set without the labels whose names are in `names`.
    pub fn without<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Self::from_sorted_unique(
            self.iter()
                .filter(|(name, _)| !names.iter().any(|n| n.as_ref() == *name)),
        )
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        // The encoding is canonical, so equal sets have equal bytes.
        self.bytes() == other.bytes()
    }
}

impl Eq for Labels {}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.bytes());
    }
}

impl Ord for Labels {
    /// Prometheus's `labels.Compare`: pair by pair, name then value; a
    /// proper prefix sorts first.
    fn cmp(&self, other: &Self) -> Ordering {
        // Equal sets have equal bytes; one memcmp settles the common
        // case of comparing a series with itself (merges, dedup).
        if self.bytes() == other.bytes() {
            return Ordering::Equal;
        }
        let mut left = self.entries();
        let mut right = other.entries();
        loop {
            match (left.next(), right.next()) {
                (Some(a), Some(b)) => {
                    // Sets being sorted usually share leading labels; an
                    // equal record (name and value) is one memcmp.
                    if a.record == b.record {
                        continue;
                    }
                    let order = a.name.cmp(b.name).then_with(|| a.value.cmp(b.value));
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (None, None) => return Ordering::Equal,
            }
        }
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Labels {
    /// The PromQL form: `up{instance="a", job="b"}`, `up` when the name is
    /// the only label, `{}` when empty. As in Prometheus 3, a metric name
    /// that is not a legacy name moves inside the braces as a quoted string
    /// (`{"my.metric", job="b"}`) and label names that are not legacy names
    /// are quoted (`{"my.label"="x"}`). Values are quoted with Go's `%q`
    /// escaping.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let metric_name = self.metric_name();
        let mut first = true;
        match metric_name {
            Some(name) if is_valid_legacy_metric_name(name) => {
                f.write_str(name)?;
                if self.len() == 1 {
                    return Ok(());
                }
                f.write_str("{")?;
            }
            Some(name) => {
                f.write_str("{")?;
                write_go_quoted(f, name)?;
                first = false;
            }
            None => f.write_str("{")?,
        }
        for (name, value) in self.iter() {
            if name == METRIC_NAME {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            if is_valid_legacy_label_name(name) {
                f.write_str(name)?;
            } else {
                write_go_quoted(f, name)?;
            }
            f.write_str("=")?;
            write_go_quoted(f, value)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Labels {
    /// A JSON object `{"__name__": "up", "job": "b"}` in name order, as the
    /// Prometheus HTTP API renders a metric.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    /// From an object of string values; a repeated name is an error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of label names to string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut pairs: Vec<(String, String)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Labels::new(pairs).map_err(serde::de::Error::custom)
            }
        }

        deserializer.deserialize_map(LabelsVisitor)
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over the `(name, value)` pairs of a [`Labels`], in name order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    entries: Entries<'a>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.entries
            .next()
            .map(|entry| (encoded_str(entry.name), encoded_str(entry.value)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

/// Cursor over the encoded entries of a label set (see the module docs).
#[derive(Debug, Clone)]
struct Entries<'a> {
    buf: &'a [u8],
    /// Next length varint.
    lengths_pos: usize,
    /// Next record.
    records_pos: usize,
    remaining: usize,
    /// The whole records region: the Prometheus hash input.
    records: &'a [u8],
}

/// One decoded entry.
struct Entry<'a> {
    name: &'a [u8],
    value: &'a [u8],
    /// `name 0xff value 0xff`.
    record: &'a [u8],
}

impl<'a> Entries<'a> {
    #[inline]
    fn new(buf: &'a [u8]) -> Self {
        if buf.is_empty() {
            return Self {
                buf,
                lengths_pos: 0,
                records_pos: 0,
                remaining: 0,
                records: buf,
            };
        }
        let (count, pos) = read_uvarint(buf, 0);
        let (lengths_size, lengths_pos) = read_uvarint(buf, pos);
        let records_pos = lengths_pos + lengths_size;
        Self {
            buf,
            lengths_pos,
            records_pos,
            remaining: count,
            records: &buf[records_pos..],
        }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    #[inline]
    fn next(&mut self) -> Option<Entry<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (name_len, pos) = read_uvarint(self.buf, self.lengths_pos);
        let (value_len, pos) = read_uvarint(self.buf, pos);
        self.lengths_pos = pos;
        let start = self.records_pos;
        let value_start = start + name_len + 1;
        let end = value_start + value_len + 1;
        self.records_pos = end;
        Some(Entry {
            name: &self.buf[start..start + name_len],
            value: &self.buf[value_start..value_start + value_len],
            record: &self.buf[start..end],
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::iter::FusedIterator for Iter<'_> {}

/// A mutable overlay over a base [`Labels`]: additions, replacements and
/// deletions are recorded and [`LabelsBuilder::labels`] produces the result.
///
/// This is the working set of relabeling and of the scrape loop's target
/// labels. Reuse one builder with [`LabelsBuilder::reset`] to keep its
/// buffers. As in Prometheus, setting an empty value deletes the label.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    base: Labels,
    /// Base labels removed (names never also in `add`).
    del: Vec<String>,
    /// Labels added or overriding the base, in insertion order.
    add: Vec<(String, String)>,
}

impl LabelsBuilder {
    /// A builder starting from `base`.
    pub fn new(base: Labels) -> Self {
        Self {
            base,
            del: Vec::new(),
            add: Vec::new(),
        }
    }

    /// Starts over from `base`, keeping the allocated buffers.
    pub fn reset(&mut self, base: Labels) {
        self.base = base;
        self.del.clear();
        self.add.clear();
    }

    /// Removes label `name` (no-op when absent).
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.add.retain(|(n, _)| n != name);
        if self.base.has(name) && !self.del.iter().any(|n| n == name) {
            self.del.push(name.to_owned());
        }
        self
    }

    /// Removes every label whose name is not in `names`.
    pub fn keep<S: AsRef<str>>(&mut self, names: &[S]) -> &mut Self {
        let keep = |name: &str| names.iter().any(|n| n.as_ref() == name);
        self.add.retain(|(n, _)| keep(n));
        for (name, _) in self.base.iter() {
            if !keep(name) && !self.del.iter().any(|n| n == name) {
                self.del.push(name.to_owned());
            }
        }
        self
    }

    /// Sets label `name` to `value`; an empty `value` deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.del(name);
        }
        self.del.retain(|n| n != name);
        if let Some(entry) = self.add.iter_mut().find(|(n, _)| n == name) {
            value.clone_into(&mut entry.1);
        } else {
            self.add.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// The current value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some((_, value)) = self.add.iter().find(|(n, _)| n == name) {
            return Some(value);
        }
        if self.del.iter().any(|n| n == name) {
            return None;
        }
        self.base.get(name)
    }

    /// The current pairs: surviving base labels in name order, then added
    /// labels in insertion order (so not sorted overall).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.base
            .iter()
            .filter(|(name, _)| {
                !self.del.iter().any(|n| n == name) && !self.add.iter().any(|(n, _)| n == name)
            })
            .chain(self.add.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    /// The resulting label set.
    pub fn labels(&self) -> Labels {
        if self.del.is_empty() && self.add.is_empty() {
            return self.base.clone();
        }
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        // Names are unique: `add` has no repeats and the filter above drops
        // base labels that `add` overrides.
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Labels::from_sorted_unique(pairs.into_iter())
    }
}

/// Which label and metric names are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameValidationScheme {
    /// Prometheus 3's default: any non-empty UTF-8 string.
    #[default]
    Utf8,
    /// The classic grammar: labels `[a-zA-Z_][a-zA-Z0-9_]*`, metric names
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    Legacy,
}

impl NameValidationScheme {
    /// Whether `name` is a valid label name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            Self::Utf8 => !name.is_empty(),
            Self::Legacy => is_valid_legacy_label_name(name),
        }
    }

    /// Whether `name` is a valid metric name under this scheme.
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            Self::Utf8 => !name.is_empty(),
            Self::Legacy => is_valid_legacy_metric_name(name),
        }
    }
}

/// Whether `name` matches `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Writes `s` as Go's `strconv.Quote` does: double quotes; `\"`, `\\`;
/// `\a \b \f \n \r \t \v`; other control characters as `\xNN`, `\uNNNN`
/// or `\UNNNNNNNN`; printable characters as themselves.
pub fn write_go_quoted<W: fmt::Write>(out: &mut W, s: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut clean_start = 0;
    for (index, c) in s.char_indices() {
        let escape: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{7}' => Some("\\a"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{b}' => Some("\\v"),
            _ => None,
        };
        let needs_numeric = escape.is_none() && is_go_unprintable(c);
        if escape.is_none() && !needs_numeric {
            continue;
        }
        out.write_str(&s[clean_start..index])?;
        clean_start = index + c.len_utf8();
        match escape {
            Some(text) => out.write_str(text)?,
            None => {
                let code = u32::from(c);
                if code < 0x80 {
                    write!(out, "\\x{code:02x}")?;
                } else if code <= 0xffff {
                    write!(out, "\\u{code:04x}")?;
                } else {
                    write!(out, "\\U{code:08x}")?;
                }
            }
        }
    }
    out.write_str(&s[clean_start..])?;
    out.write_char('"')
}

/// Approximates Go's `!strconv.IsPrint` with the information `char` has:
/// control characters, and the Unicode separators other than ASCII space
/// that Go escapes.
fn is_go_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{00ad}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
        || (c.is_whitespace() && c != ' ')
}

/// Subsets larger than this are hashed with the streaming hasher instead
/// of being staged in the scratch buffer, so one huge label set does not
/// leave a huge buffer behind on the thread.
const MAX_STAGED_HASH_INPUT: usize = 64 * 1024;

thread_local! {
    /// Staging buffer for [`records_hash`]: a one-shot xxHash64 over a
    /// contiguous buffer is markedly faster than the streaming hasher on
    /// short inputs, and reusing the buffer avoids an allocation per hash.
    static HASH_SCRATCH: std::cell::RefCell<Vec<u8>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// xxHash64 (seed 0) over the concatenated records of a subset of entries:
/// Prometheus's `HashForLabels` / `HashWithoutLabels`.
fn records_hash<'a>(entries: impl Iterator<Item = Entry<'a>>) -> u64 {
    HASH_SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        let mut stream: Option<Xxh64> = None;
        for entry in entries {
            if let Some(stream) = stream.as_mut() {
                stream.update(entry.record);
            } else if buf.len() + entry.record.len() > MAX_STAGED_HASH_INPUT {
                let mut started = Xxh64::new(0);
                started.update(buf);
                started.update(entry.record);
                stream = Some(started);
            } else {
                buf.extend_from_slice(entry.record);
            }
        }
        match stream {
            Some(stream) => stream.digest(),
            None => xxh64(buf, 0),
        }
    })
}

/// Bytes needed to encode `value` as an unsigned LEB128 varint.
#[inline]
fn uvarint_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

#[inline]
fn put_uvarint(buf: &mut [u8], mut pos: usize, mut value: usize) -> usize {
    while value >= 0x80 {
        buf[pos] = (value as u8) | 0x80;
        value >>= 7;
        pos += 1;
    }
    buf[pos] = value as u8;
    pos + 1
}

/// Writes `bytes` and the `0xff` separator at `pos`.
#[inline]
fn put_record_part(buf: &mut [u8], pos: usize, bytes: &[u8]) -> usize {
    buf[pos..pos + bytes.len()].copy_from_slice(bytes);
    buf[pos + bytes.len()] = HASH_SEPARATOR;
    pos + bytes.len() + 1
}

/// Reads a varint written by [`put_uvarint`]. The buffer is only ever
/// produced by this module, so it is well-formed.
#[inline]
fn read_uvarint(buf: &[u8], pos: usize) -> (usize, usize) {
    let first = buf[pos];
    if first < 0x80 {
        return (usize::from(first), pos + 1);
    }
    let mut value = 0usize;
    let mut shift = 0;
    let mut pos = pos;
    loop {
        let byte = buf[pos];
        pos += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return (value, pos);
        }
        shift += 7;
    }
}

/// Reinterprets a name or value slice of an encoded buffer as `str`.
#[inline]
fn encoded_str(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: buffers are built only by `Labels::from_sorted_unique` from
    // `&str` names and values, and `Entries` yields exactly the byte range
    // of one of them, so the bytes are valid UTF-8. The buffer is
    // immutable after construction.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).expect("valid labels")
    }

    #[test]
    fn new_sorts_and_looks_up() {
        let ls = labels(&[("job", "node"), ("__name__", "up"), ("instance", "a:9100")]);
        assert_eq!(ls.len(), 3);
        let pairs: Vec<_> = ls.iter().collect();
        assert_eq!(
            pairs,
            vec![("__name__", "up"), ("instance", "a:9100"), ("job", "node")]
        );
        assert_eq!(ls.get("instance"), Some("a:9100"));
        assert_eq!(ls.get("absent"), None);
        assert_eq!(ls.get(""), None);
        assert_eq!(ls.get("zzz"), None);
        assert_eq!(ls.metric_name(), Some("up"));
        assert!(ls.has("job"));
        assert!(!ls.has("jo"));
    }

    #[test]
    fn new_rejects_duplicate_names() {
        let err = Labels::new([("a", "1"), ("b", "2"), ("a", "3")]).unwrap_err();
        assert_eq!(err, LabelsError::DuplicateName { name: "a".into() });
    }

    #[test]
    fn empty_set_does_not_allocate() {
        let ls = Labels::new(Vec::<(&str, &str)>::new()).expect("empty is valid");
        assert!(ls.is_empty());
        assert_eq!(ls.len(), 0);
        assert_eq!(ls.heap_size(), 0);
        assert_eq!(ls, Labels::EMPTY);
        assert_eq!(ls.iter().count(), 0);
        assert_eq!(ls.to_string(), "{}");
    }

    #[test]
    fn long_strings_use_multi_byte_lengths() {
        let long = "x".repeat(100_000);
        let ls = labels(&[("big", &long), ("a", "1"), ("z", &long[..200])]);
        assert_eq!(ls.get("big").map(str::len), Some(100_000));
        assert_eq!(ls.get("z").map(str::len), Some(200));
        assert_eq!(ls.get("a"), Some("1"));
        assert_eq!(ls.len(), 3);
    }

    #[test]
    fn equality_and_std_hash_follow_content() {
        use std::collections::HashSet;
        let a = labels(&[("a", "1"), ("b", "2")]);
        let b = labels(&[("b", "2"), ("a", "1")]);
        let c = labels(&[("a", "1"), ("b", "3")]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let set: HashSet<Labels> = [a.clone(), b, c].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn ordering_is_prometheus_compare() {
        // Pairwise name, then value; a proper prefix first.
        let a = labels(&[("a", "1")]);
        let ab = labels(&[("a", "1"), ("b", "1")]);
        let a2 = labels(&[("a", "2")]);
        let b = labels(&[("b", "0")]);
        let mut sorted = vec![b.clone(), a2.clone(), ab.clone(), a.clone()];
        sorted.sort();
        assert_eq!(sorted, vec![a, ab, a2, b]);
        // Lengths must not dominate: a long value sorts by content.
        let short_late = labels(&[("a", "b")]);
        let long_early = labels(&[(
            "a",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )]);
        assert!(long_early < short_late);
    }

    #[test]
    fn hash_matches_prometheus_definition() {
        // Prometheus: xxhash.Sum64 over name 0xff value 0xff ...
        let ls = labels(&[("__name__", "up"), ("job", "node")]);
        let mut expected_input = Vec::new();
        for (n, v) in [("__name__", "up"), ("job", "node")] {
            expected_input.extend_from_slice(n.as_bytes());
            expected_input.push(0xff);
            expected_input.extend_from_slice(v.as_bytes());
            expected_input.push(0xff);
        }
        assert_eq!(ls.hash(), xxh64(&expected_input, 0));
        assert_eq!(Labels::EMPTY.hash(), xxh64(&[], 0));
    }

    #[test]
    fn hash_is_the_same_when_streamed() {
        // Over MAX_STAGED_HASH_INPUT the hasher streams; the value must not
        // change.
        let big = "v".repeat(MAX_STAGED_HASH_INPUT + 1);
        // Also as a subset, which goes through the staging buffer.
        let streamed_subset =
            Labels::new([("a", "1"), ("b", big.as_str()), ("c", "3"), ("d", "4")])
                .expect("valid")
                .hash_for_labels(&["a", "b", "c"]);
        let pairs = [("a", "1"), ("b", big.as_str()), ("c", "3")];
        let ls = labels(&pairs);
        let mut input = Vec::new();
        for (n, v) in pairs {
            input.extend_from_slice(n.as_bytes());
            input.push(0xff);
            input.extend_from_slice(v.as_bytes());
            input.push(0xff);
        }
        assert_eq!(ls.hash(), xxh64(&input, 0));
        assert_eq!(streamed_subset, xxh64(&input, 0));
    }

    #[test]
    fn hash_for_and_without_labels() {
        let ls = labels(&[("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(
            ls.hash_for_labels(&["c", "a"]),
            labels(&[("a", "1"), ("c", "3")]).hash()
        );
        assert_eq!(
            ls.hash_without_labels(&["b"]),
            labels(&[("a", "1"), ("c", "3")]).hash()
        );
        assert_eq!(
            ls.hash_without_labels::<&str>(&[]),
            labels(&[("a", "1"), ("b", "2"), ("c", "3")]).hash()
        );
        assert_ne!(ls.hash_for_labels(&["a"]), ls.hash_for_labels(&["b"]));
    }

    #[test]
    fn derived_sets() {
        let ls = labels(&[("__name__", "m"), ("a", "1"), ("b", "2")]);
        assert_eq!(ls.drop_metric_name(), labels(&[("a", "1"), ("b", "2")]));
        assert_eq!(ls.keep_only(&["b", "x"]), labels(&[("b", "2")]));
        assert_eq!(ls.without(&["a", "__name__"]), labels(&[("b", "2")]));
        assert_eq!(ls.without(&["a", "b", "__name__"]), Labels::EMPTY);
    }

    #[test]
    fn display_prometheus_form() {
        assert_eq!(labels(&[("__name__", "up")]).to_string(), "up");
        assert_eq!(
            labels(&[("__name__", "up"), ("job", "a\"b\\c\nd")]).to_string(),
            r#"up{job="a\"b\\c\nd"}"#
        );
        assert_eq!(
            labels(&[("b", "2"), ("a", "1")]).to_string(),
            r#"{a="1", b="2"}"#
        );
        assert_eq!(
            labels(&[("__name__", "my.metric"), ("my.label", "x"), ("ok", "ü")]).to_string(),
            r#"{"my.metric", "my.label"="x", ok="ü"}"#
        );
        assert_eq!(labels(&[("__name__", "a:b")]).to_string(), "a:b");
        assert_eq!(
            labels(&[("a", "\u{1}\u{7f}")]).to_string(),
            r#"{a="\x01\x7f"}"#
        );
    }

    #[test]
    fn serde_round_trip_as_object() {
        let ls = labels(&[("job", "x"), ("__name__", "up")]);
        let json = serde_json::to_string(&ls).expect("serialises");
        assert_eq!(json, r#"{"__name__":"up","job":"x"}"#);
        let back: Labels = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, ls);
        assert!(serde_json::from_str::<Labels>(r#"{"a":"1","a":"2"}"#).is_err());
        assert!(serde_json::from_str::<Labels>(r#"{"a":1}"#).is_err());
    }

    #[test]
    fn builder_set_del_keep_reset() {
        let base = labels(&[("__name__", "up"), ("instance", "i"), ("job", "j")]);
        let mut b = LabelsBuilder::new(base.clone());
        assert_eq!(b.labels(), base);

        b.set("job", "k").set("zone", "eu").del("instance");
        assert_eq!(b.get("job"), Some("k"));
        assert_eq!(b.get("instance"), None);
        assert_eq!(b.get("zone"), Some("eu"));
        assert_eq!(
            b.labels(),
            labels(&[("__name__", "up"), ("job", "k"), ("zone", "eu")])
        );

        // Re-setting a deleted label brings it back.
        b.set("instance", "i2");
        assert_eq!(b.get("instance"), Some("i2"));
        // An empty value deletes, including added labels.
        b.set("zone", "");
        assert_eq!(b.get("zone"), None);
        assert_eq!(
            b.labels(),
            labels(&[("__name__", "up"), ("instance", "i2"), ("job", "k")])
        );

        b.keep(&["__name__", "job"]);
        assert_eq!(b.labels(), labels(&[("__name__", "up"), ("job", "k")]));

        b.reset(base.clone());
        assert_eq!(b.labels(), base);
        b.del("absent");
        assert_eq!(b.labels(), base);
    }

    #[test]
    fn name_validation() {
        assert!(is_valid_legacy_label_name("_a1"));
        assert!(!is_valid_legacy_label_name("1a"));
        assert!(!is_valid_legacy_label_name("a:b"));
        assert!(!is_valid_legacy_label_name(""));
        assert!(is_valid_legacy_metric_name("a:b_c"));
        assert!(is_valid_legacy_metric_name(":a"));
        assert!(!is_valid_legacy_metric_name("a.b"));
        assert!(NameValidationScheme::Utf8.is_valid_label_name("a.b"));
        assert!(!NameValidationScheme::Utf8.is_valid_label_name(""));
        assert!(!NameValidationScheme::Legacy.is_valid_metric_name("a.b"));
    }
}
