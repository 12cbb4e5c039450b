//! The storage contracts: how samples go in ([`Appendable`], [`Appender`])
//! and how series come out ([`Queryable`], [`Querier`], [`SeriesSet`],
//! [`Series`], [`SampleIterator`]).
//!
//! Every producer of samples (scrape loops, the remote-write and OTLP
//! receivers, rule evaluation) writes through an [`Appender`]; every reader
//! (the PromQL engine, the HTTP API, federation, remote read) reads through
//! a [`Querier`]. The TSDB implements both; remote read and fan-out
//! storages implement the read side. [`MemStorage`] is a small in-memory
//! implementation that is obviously correct and serves as the oracle in
//! property tests and as the storage of PromQL unit tests.
//!
//! # The transaction model
//!
//! Appends are grouped in transactions. An appender buffers what it is
//! given; [`Appender::commit`] makes all of it visible **atomically** and
//! [`Appender::rollback`] (or dropping the appender) discards it. Readers
//! are **isolated**: a [`Querier`] sees exactly the commits that completed
//! before it was created, never part of a commit and never a commit that
//! completes while it is open. A scrape is one transaction, so a query
//! never sees half a scrape.
//!
//! ```
//! use ember_model::labels::Labels;
//! use ember_model::matcher::Matcher;
//! use ember_model::storage::{Appendable, MemStorage, Queryable};
//!
//! let storage = MemStorage::new();
//! let up = Labels::new([("__name__", "up"), ("job", "node")])?;
//!
//! let mut app = storage.appender();
//! let series = app.append(None, &up, 1_000, 1.0)?;
//! // Later appends in the scrape cache skip label hashing with the ref.
//! app.append(Some(series), &up, 2_000, 1.0)?;
//! app.commit()?;
//!
//! let querier = storage.querier(0, 10_000)?;
//! let mut set = querier.select(true, None, &[Matcher::equal("job", "node")])?;
//! let series = set.next().expect("one series")?;
//! assert_eq!(series.labels(), &up);
//! let mut samples = series.samples();
//! assert!(samples.seek(1_500));
//! assert_eq!(samples.at().t, 2_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod mem;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::histogram::{FloatHistogram, HistogramError};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::metadata::Metadata;
use crate::sample::{Exemplar, Sample};

pub use mem::{MemStorage, MemStorageOptions};

/// An opaque reference to a series, issued by an [`Appender`] so that
/// later appends can skip looking the series up by its labels.
///
/// A ref is meaningful only to the storage that issued it: never pass it
/// to another (a fan-out storage must keep a ref per underlying storage).
/// It may become stale, for example after the TSDB garbage-collects an
/// inactive series at head compaction; implementations must never reissue
/// a ref for a different series, so a stale ref is recognised as unknown
/// and the storage falls back to the labels passed alongside it. Those
/// labels must therefore always be the series' labels. A storage may
/// trust a known ref without comparing the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesRef(u64);

impl SeriesRef {
    /// Wraps a storage-specific id. Only storages should call this.
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The storage-specific id.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Why a sample, exemplar or metadata update was not accepted.
///
/// The rejection variants ([`AppendError::is_sample_rejection`]) refuse
/// only the one item: the appender stays usable and the rest of the
/// transaction can still be committed (the scrape loop counts them, as
/// Prometheus's `prometheus_target_scrapes_sample_out_of_order_total` and
/// friends do). [`AppendError::Storage`] means the storage failed; roll the
/// transaction back. Messages start with Prometheus's wording, which remote
/// write clients and operators search logs for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// `t` is older than the newest sample of the series and out-of-order
    /// ingestion is disabled.
    #[error("out of order sample: timestamp {t} before the series' latest {last_t} for {series}")]
    OutOfOrder {
        /// The series.
        series: Labels,
        /// The rejected sample's timestamp.
        t: i64,
        /// The newest timestamp of the series.
        last_t: i64,
    },
    /// `t` is older than the oldest time the storage accepts at all (for
    /// the TSDB, the start of the head block).
    #[error(
        "out of bounds: timestamp {t} before the minimum valid time {min_valid_t} for {series}"
    )]
    OutOfBounds {
        /// The series.
        series: Labels,
        /// The rejected sample's timestamp.
        t: i64,
        /// The oldest acceptable timestamp.
        min_valid_t: i64,
    },
    /// `t` is out of order and older than the out-of-order window allows.
    #[error(
        "too old sample: timestamp {t} before {min_valid_t}, the out-of-order window's start, for {series}"
    )]
    TooOld {
        /// The series.
        series: Labels,
        /// The rejected sample's timestamp.
        t: i64,
        /// The oldest timestamp the out-of-order window accepts.
        min_valid_t: i64,
    },
    /// The series already has a sample at `t` with a different value
    /// (values are compared bit for bit; re-appending the identical sample
    /// is accepted as a no-op).
    #[error(
        "duplicate sample for timestamp {t}: new value {new} differs from stored {existing} for {series}"
    )]
    DuplicateSampleForTimestamp {
        /// The series.
        series: Labels,
        /// The timestamp.
        t: i64,
        /// The stored value.
        existing: f64,
        /// The rejected value.
        new: f64,
    },
    /// A series must have at least one label.
    #[error("empty labelset: a series needs at least one label")]
    EmptyLabelSet,
    /// The exemplar has no timestamp; the caller must supply one (the scrape
    /// loop uses the sample's).
    #[error("exemplar without timestamp for {series}")]
    ExemplarMissingTimestamp {
        /// The series.
        series: Labels,
    },
    /// The exemplar is older than the newest exemplar of the series.
    #[error("out of order exemplar: timestamp {t} before the latest {last_t} for {series}")]
    ExemplarOutOfOrder {
        /// The series.
        series: Labels,
        /// The rejected exemplar's timestamp.
        t: i64,
        /// The newest exemplar timestamp of the series.
        last_t: i64,
    },
    /// The exemplar equals the newest exemplar of the series (expected when
    /// a target exposes the same exemplar on several scrapes; not worth
    /// logging).
    #[error("duplicate exemplar at {t} for {series}")]
    DuplicateExemplar {
        /// The series.
        series: Labels,
        /// The exemplar's timestamp.
        t: i64,
    },
    /// The exemplar's labels are longer (in UTF-8 characters, names and
    /// values together) than OpenMetrics allows.
    #[error("exemplar label set is {length} characters, over the limit of {limit}, for {series}")]
    ExemplarLabelsTooLong {
        /// The series.
        series: Labels,
        /// The exemplar labels' length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// This storage does not keep exemplars.
    #[error("exemplar storage is disabled")]
    ExemplarsDisabled,
    /// This storage does not keep native histograms.
    #[error("native histograms are not supported by this storage")]
    HistogramsUnsupported,
    /// The histogram is malformed.
    #[error("invalid histogram for {series}: {source}")]
    InvalidHistogram {
        /// The series.
        series: Labels,
        /// What is wrong with it.
        #[source]
        source: HistogramError,
    },
    /// The storage failed; the transaction should be rolled back.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl AppendError {
    /// Whether only this item was refused and the appender remains usable
    /// (every variant but [`AppendError::Storage`]).
    pub fn is_sample_rejection(&self) -> bool {
        !matches!(self, Self::Storage(_))
    }
}

/// The OpenMetrics limit on an exemplar's label set: 128 UTF-8 characters
/// of names and values together.
pub const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

/// A storage failure: I/O, corruption, shutdown, resource limits, or an
/// implementation-specific error.
///
/// `Clone` (sources are shared), so one failure can be reported by every
/// series and iterator it affects.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The storage has been closed.
    #[error("storage is closed")]
    Closed,
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `writing WAL segment 00000012`.
        context: String,
        /// The error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Stored data is inconsistent.
    #[error("corrupted data: {0}")]
    Corruption(String),
    /// A limit was hit (too many series or samples for one query, memory).
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// The caller asked for something the storage cannot do.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operation was cancelled by the caller.
    #[error("operation cancelled")]
    Cancelled,
    /// An error specific to the implementation (e.g. a remote-read
    /// endpoint's failure), kept as its source.
    #[error(transparent)]
    Other(Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl StorageError {
    /// Wraps an implementation-specific error.
    pub fn other<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self::Other(Arc::new(error))
    }

    /// An I/O failure while doing `context`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

/// Something samples can be appended to.
///
/// # Contract
/// - `Send + Sync`: shared behind an `Arc` by every scrape loop and
///   receiver; [`Appendable::appender`] may be called concurrently.
/// - Appenders are independent transactions: any number may be open at
///   once, on any threads.
/// - The appender is owned (`'static`) and `Send`, so a scrape task can
///   create it, hold it across `.await` points and commit it later, or move
///   it into a blocking task.
pub trait Appendable: Send + Sync {
    /// Starts a transaction.
    fn appender(&self) -> Box<dyn Appender>;
}

/// One append transaction. Obtain it from [`Appendable::appender`].
///
/// # Contract
/// - **Buffered until commit.** Nothing appended is visible to queriers
///   before [`Appender::commit`] returns `Ok`; then all of it is, at once
///   (atomicity), to queriers created afterwards (isolation: queriers
///   created earlier never see it).
/// - **Validated at append time.** `append` checks the sample against the
///   series' committed samples *and* those this appender already holds,
///   and returns a typed rejection ([`AppendError::OutOfOrder`],
///   [`AppendError::OutOfBounds`], [`AppendError::TooOld`],
///   [`AppendError::DuplicateSampleForTimestamp`]) for a sample that cannot
///   be stored; a rejection leaves the appender usable. Appending a sample
///   identical (same timestamp, same value bits) to a stored one is
///   accepted and changes nothing.
/// - **Concurrent writers to one series.** If another appender commits
///   samples of the same series between this appender's `append` and
///   `commit`, a sample that has become invalid (now out of order or a
///   conflicting duplicate) is dropped at commit and counted by the
///   storage's own metrics; the rest of the transaction still commits
///   atomically. A series should have one writer (one target, one rule) in
///   a healthy setup, so this is the rare case, and Prometheus behaves the
///   same way.
/// - **Dropping = rollback.** An appender dropped without `commit` or
///   `rollback` discards its buffer exactly as `rollback` would
///   (implementations must do this in `Drop`); a panicking scrape task
///   therefore never publishes half a scrape.
/// - **Series refs.** `append` returns the series' [`SeriesRef`]; pass it
///   back (with the same labels) on later appends, in this or later
///   transactions, to skip hashing and looking up the labels. With `None`
///   or an unknown ref, the storage identifies the series by `labels`.
///   The series (and its ref) may be created at `append` time even if the
///   transaction is rolled back; it has no samples then and queries do not
///   return it.
/// - **Order within a transaction.** Samples of one series must be
///   appended in timestamp order unless the storage accepts out-of-order
///   samples; samples of different series may interleave freely.
/// - `Send` but not `Sync`: one task drives an appender at a time.
pub trait Appender: Send {
    /// Buffers a float sample `(t, v)` (ms, value) for the series `labels`
    /// (or `series`, see the trait docs), returning the series' ref.
    ///
    /// The staleness marker ([`crate::sample::STALE_NAN_BITS`]) is stored
    /// bit for bit like any other value.
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError>;

    /// Buffers a native histogram sample for the series, with the same
    /// admission rules as [`append`](Self::append) (a float and a
    /// histogram at the same timestamp are a duplicate). A storage that
    /// does not keep histograms refuses it with
    /// [`AppendError::HistogramsUnsupported`], which is the default.
    fn append_histogram(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        histogram: &FloatHistogram,
    ) -> Result<SeriesRef, AppendError> {
        let _ = (series, labels, t, histogram);
        Err(AppendError::HistogramsUnsupported)
    }

    /// Buffers an exemplar for the series. The exemplar must carry a
    /// timestamp ([`AppendError::ExemplarMissingTimestamp`] otherwise). An
    /// exemplar equal to the series' newest one is refused with
    /// [`AppendError::DuplicateExemplar`], which callers should ignore.
    fn append_exemplar(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        exemplar: &Exemplar,
    ) -> Result<SeriesRef, AppendError>;

    /// Buffers the series' metadata (type, help, unit), replacing what was
    /// stored at commit.
    fn update_metadata(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        metadata: &Metadata,
    ) -> Result<SeriesRef, AppendError>;

    /// Makes everything buffered visible atomically (see the trait docs).
    /// On `Err` nothing was made visible; the storage is in its previous
    /// state as far as readers can tell.
    fn commit(self: Box<Self>) -> Result<(), StorageError>;

    /// Discards everything buffered.
    fn rollback(self: Box<Self>) -> Result<(), StorageError>;
}

/// Something that can be read over a time range.
///
/// # Contract
/// `Send + Sync`; [`Queryable::querier`] may be called concurrently and the
/// queriers used on any threads.
pub trait Queryable: Send + Sync {
    /// A read-only view of the samples with timestamps in the closed range
    /// `[mint, maxt]` (ms), isolated from commits that complete after this
    /// call returns. Holding a querier may pin resources (blocks cannot be
    /// deleted by retention while read), so drop it when the query is done.
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError>;
}

/// Something exemplars can be read from (for `/api/v1/query_exemplars`).
///
/// # Contract
/// `Send + Sync`, callable concurrently. Answers from the commits completed
/// before the call.
pub trait ExemplarQueryable: Send + Sync {
    /// The exemplars with timestamps in `[start, end]` (ms) of every series
    /// that satisfies all matchers of **any** of `matcher_sets` (the sets
    /// are alternatives, one per selector of the query). Series come in
    /// ascending label order, each once, with exemplars in timestamp
    /// order; series without exemplars in range are left out.
    fn select_exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<ExemplarQueryResult>, StorageError>;
}

/// The exemplars of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarQueryResult {
    /// The series the exemplars belong to.
    pub series: Labels,
    /// Its exemplars in range, oldest first; every one has a timestamp.
    pub exemplars: Vec<Exemplar>,
}

// Shared handles are storages too, so an `Arc<Tsdb>` or `Arc<dyn Storage>`
// can be passed wherever an `impl Appendable` or `impl Queryable` is wanted.
impl<T: Appendable + ?Sized> Appendable for Arc<T> {
    fn appender(&self) -> Box<dyn Appender> {
        (**self).appender()
    }
}

impl<T: Queryable + ?Sized> Queryable for Arc<T> {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        (**self).querier(mint, maxt)
    }
}

impl<T: ExemplarQueryable + ?Sized> ExemplarQueryable for Arc<T> {
    fn select_exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<ExemplarQueryResult>, StorageError> {
        (**self).select_exemplars(start, end, matcher_sets)
    }
}

/// Everything a full storage offers; implemented for every type that is
/// both [`Appendable`] and [`Queryable`].
pub trait Storage: Appendable + Queryable {}

impl<T: Appendable + Queryable + ?Sized> Storage for T {}

/// A consistent, read-only snapshot of a storage over `[mint, maxt]`.
///
/// # Contract
/// - **Snapshot.** All methods answer from the same state: the commits
///   completed before the querier was created.
/// - **Range.** Only samples with `mint <= t <= maxt` are returned (unless
///   [`SelectHints::disable_trimming`] allows more). Label queries consider
///   series with data in the range; an implementation that tracks time
///   coarsely (per block) may include a few series without a sample in the
///   range, never omit one that has.
/// - **Matchers.** A series is selected when it satisfies every matcher
///   (an absent label matches as `""`). No matchers select every series.
/// - **Thread-safety.** `Send + Sync`: selects may run concurrently, for
///   example one per selector of a PromQL expression.
/// - **Lifetimes.** Series sets borrow the querier, and series and sample
///   iterators borrow the set's source; everything obtained from a querier
///   must be dropped before it.
pub trait Querier: Send + Sync {
    /// The series that match all `matchers` and have samples in the range.
    ///
    /// When `sorted` is true, series come in ascending [`Labels`] order
    /// (Prometheus's `labels.Compare`); when false, any order (which lets a
    /// fan-out storage skip a merge). Each series appears once.
    /// `hints` describe the query; a storage may use them to do less work
    /// (see [`SelectHints`]) but must return correct results ignoring them,
    /// except that [`SelectHints::limit`] caps the number of series.
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet<'_> + '_>, StorageError>;

    /// The distinct non-empty values of label `name` among the series that
    /// match `matchers` and have data in the range, ascending, at most
    /// `limit` of them (the smallest ones) when given.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError>;

    /// The distinct label names among the series that match `matchers` and
    /// have data in the range, ascending, at most `limit` of them.
    fn label_names(
        &self,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError>;
}

/// The answer to a label query: sorted, distinct strings and any warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelQueryResult {
    /// Names or values, ascending, distinct.
    pub values: Vec<String>,
    /// Non-fatal problems (e.g. a remote-read source that failed).
    pub annotations: Annotations,
}

/// What a select is for, so a storage can do less work. Field meanings
/// follow Prometheus's `storage.SelectHints`; all times are ms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectHints {
    /// Start of the time range the query needs (may be narrower than the
    /// querier's `mint`).
    pub start: i64,
    /// End of the time range the query needs.
    pub end: i64,
    /// Evaluation step of a range query; 0 for instant queries.
    pub step: i64,
    /// Range of a range-vector selector (`[5m]`), 0 otherwise.
    pub range: i64,
    /// The PromQL function applied to the selection (`rate`, ...), or
    /// `series` when only labels are needed (`/api/v1/series`), in which
    /// case sample iterators may be empty.
    pub func: Option<String>,
    /// Grouping labels of the surrounding aggregation.
    pub grouping: Vec<String>,
    /// Whether `grouping` is `by` (true) or `without` (false).
    pub by: bool,
    /// Return at most this many series (for the API's `limit`).
    pub limit: Option<usize>,
    /// Samples outside `[mint, maxt]` may be returned (useful when the
    /// caller re-trims, e.g. for chunk-aligned remote read).
    pub disable_trimming: bool,
}

/// A stream of series from [`Querier::select`].
///
/// It is an [`Iterator`] of `Result`s: an error ends the stream (the next
/// call returns `None`). Series borrow from the querier for `'q`.
/// [`SeriesSet::annotations`] is complete once the iterator has returned
/// `None`, so iterate with `while let` (or `by_ref`) to read them after:
///
/// ```
/// use ember_model::storage::{MemStorage, Queryable, collect_samples};
///
/// let storage = MemStorage::new();
/// let querier = storage.querier(0, 1_000)?;
/// let mut set = querier.select(false, None, &[])?;
/// while let Some(series) = set.next() {
///     let series = series?;
///     let samples = collect_samples(series.samples().as_mut())?;
///     println!("{}: {} samples", series.labels(), samples.len());
/// }
/// for warning in set.annotations().warnings() {
///     eprintln!("warning: {warning}");
/// }
/// # Ok::<(), ember_model::storage::StorageError>(())
/// ```
pub trait SeriesSet<'q>:
    Iterator<Item = Result<Box<dyn Series + 'q>, StorageError>> + Send
{
    /// Non-fatal problems met while producing the series (partial results
    /// from a remote source, for instance).
    fn annotations(&self) -> &Annotations;
}

/// One series: its labels and its samples in the querier's range.
///
/// `Send`, so series can be handed to worker threads.
pub trait Series: Send {
    /// The series' labels.
    fn labels(&self) -> &Labels;

    /// A new iterator over the samples, positioned before the first. Each
    /// call starts afresh.
    fn samples(&self) -> Box<dyn SampleIterator + '_>;

    /// Whether some samples of this series may be native histograms. When
    /// `false` (the default) readers never ask the iterator for histograms,
    /// so float-only series cost nothing extra; when `true` they call
    /// [`SampleIterator::at_histogram`] for every sample.
    fn may_have_histograms(&self) -> bool {
        false
    }
}

/// A forward cursor over a series' samples in ascending timestamp order
/// (timestamps strictly increasing), with the semantics of Prometheus's
/// `chunkenc.Iterator`:
///
/// - A new iterator is positioned *before* the first sample; call
///   [`next`](Self::next) or [`seek`](Self::seek) before [`at`](Self::at).
/// - [`next`](Self::next) advances one sample and returns whether there is
///   one. After it returns `false` the iterator is exhausted and stays so.
/// - [`seek(t)`](Self::seek) advances to the first sample with timestamp
///   `>= t` and returns whether one exists. It **never moves backwards**:
///   if the current sample already has timestamp `>= t`, it stays where it
///   is (so `seek` with a smaller `t` than the current sample's is a no-op
///   returning `true`). On a new iterator it finds the first sample `>= t`.
///   On an exhausted iterator it returns `false`.
/// - [`at`](Self::at) returns the current sample; only meaningful after
///   `next` or `seek` returned `true`. It never panics; elsewhere its value
///   is unspecified.
/// - [`err`](Self::err): when `next` or `seek` returned `false` because of a
///   failure (corrupt chunk, remote error) rather than the end, the error
///   is here.
///
/// `Send` so it can move between threads with its series.
pub trait SampleIterator: Send {
    /// Advances to the next sample; `false` at the end or on error.
    fn next(&mut self) -> bool;

    /// Advances to the first sample with timestamp `>= t` (never back).
    fn seek(&mut self, t: i64) -> bool;

    /// The current sample. For a histogram sample (see
    /// [`at_histogram`](Self::at_histogram)) only its timestamp `t` is
    /// meaningful, unless `v` is the staleness marker.
    fn at(&self) -> Sample;

    /// The current sample's histogram, when it is a native histogram
    /// sample; `None` for float samples (the default, for iterators that
    /// only ever yield floats). Only called for series whose
    /// [`Series::may_have_histograms`] is `true`.
    fn at_histogram(&self) -> Option<&FloatHistogram> {
        None
    }

    /// The error that stopped the iteration, if any.
    fn err(&self) -> Option<&StorageError>;
}

/// How serious an [`Annotation`] is, as in the HTTP API's `warnings` and
/// `infos` arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The result may be incomplete or wrong (`warnings`).
    Warning,
    /// The result is fine but the query may not mean what was intended
    /// (`infos`).
    Info,
}

/// A non-fatal message attached to a result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Annotation {
    /// Warning or info.
    pub severity: Severity,
    /// Human-readable text.
    pub message: String,
}

/// An ordered set of annotations, deduplicated (the same message from a
/// thousand series is reported once, as Prometheus does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    items: Vec<Annotation>,
}

impl Annotations {
    /// No annotations.
    pub const fn new() -> Self {
        Self { items: Vec::new() }
    }

    /// Adds an annotation unless an identical one is present.
    pub fn push(&mut self, annotation: Annotation) {
        if !self.items.contains(&annotation) {
            self.items.push(annotation);
        }
    }

    /// Adds a warning.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.push(Annotation {
            severity: Severity::Warning,
            message: message.into(),
        });
    }

    /// Adds an info.
    pub fn info(&mut self, message: impl Into<String>) {
        self.push(Annotation {
            severity: Severity::Info,
            message: message.into(),
        });
    }

    /// Adds every annotation of `other`.
    pub fn merge(&mut self, other: Annotations) {
        for annotation in other.items {
            self.push(annotation);
        }
    }

    /// All annotations in insertion order.
    pub fn iter(&self) -> std::slice::Iter<'_, Annotation> {
        self.items.iter()
    }

    /// Messages of the warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &str> + '_ {
        self.of(Severity::Warning)
    }

    /// Messages of the infos.
    pub fn infos(&self) -> impl Iterator<Item = &str> + '_ {
        self.of(Severity::Info)
    }

    fn of(&self, severity: Severity) -> impl Iterator<Item = &str> + '_ {
        self.items
            .iter()
            .filter(move |a| a.severity == severity)
            .map(|a| a.message.as_str())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }
}

impl<'a> IntoIterator for &'a Annotations {
    type Item = &'a Annotation;
    type IntoIter = std::slice::Iter<'a, Annotation>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A [`SampleIterator`] over a sorted slice of samples: the building block
/// for in-memory series (tests, [`MemStorage`], decoded remote-read data).
#[derive(Debug, Clone)]
pub struct SliceSampleIterator<'a> {
    samples: &'a [Sample],
    /// Index of the current sample; `None` before the first `next`/`seek`.
    position: Option<usize>,
}

impl<'a> SliceSampleIterator<'a> {
    /// An iterator over `samples`, which must be sorted by strictly
    /// increasing timestamp.
    pub fn new(samples: &'a [Sample]) -> Self {
        Self {
            samples,
            position: None,
        }
    }
}

impl SampleIterator for SliceSampleIterator<'_> {
    fn next(&mut self) -> bool {
        let next = match self.position {
            None => 0,
            Some(index) if index >= self.samples.len() => return false,
            Some(index) => index + 1,
        };
        self.position = Some(next);
        next < self.samples.len()
    }

    fn seek(&mut self, t: i64) -> bool {
        let start = match self.position {
            None => 0,
            Some(index) if index >= self.samples.len() => return false,
            Some(index) if self.samples[index].t >= t => return true,
            Some(index) => index + 1,
        };
        let offset = self.samples[start..].partition_point(|s| s.t < t);
        let index = start + offset;
        self.position = Some(index);
        index < self.samples.len()
    }

    fn at(&self) -> Sample {
        self.position
            .and_then(|index| self.samples.get(index))
            .copied()
            .unwrap_or(Sample::new(i64::MIN, f64::NAN))
    }

    fn err(&self) -> Option<&StorageError> {
        None
    }
}

/// A [`Series`] that owns its labels and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSeries {
    labels: Labels,
    samples: Vec<Sample>,
}

impl ListSeries {
    /// A series from labels and samples sorted by strictly increasing
    /// timestamp.
    pub fn new(labels: Labels, samples: Vec<Sample>) -> Self {
        Self { labels, samples }
    }

    /// The samples.
    pub fn sample_slice(&self) -> &[Sample] {
        &self.samples
    }
}

impl Series for ListSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(SliceSampleIterator::new(&self.samples))
    }
}

/// A [`SeriesSet`] over series already in memory.
pub struct ListSeriesSet<'q> {
    series: std::vec::IntoIter<Box<dyn Series + 'q>>,
    annotations: Annotations,
}

impl<'q> ListSeriesSet<'q> {
    /// A set yielding `series` in the given order with `annotations`.
    pub fn new(series: Vec<Box<dyn Series + 'q>>, annotations: Annotations) -> Self {
        Self {
            series: series.into_iter(),
            annotations,
        }
    }
}

impl fmt::Debug for ListSeriesSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListSeriesSet")
            .field("remaining", &self.series.len())
            .field("annotations", &self.annotations)
            .finish()
    }
}

impl<'q> Iterator for ListSeriesSet<'q> {
    type Item = Result<Box<dyn Series + 'q>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.series.next().map(Ok)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.series.size_hint()
    }
}

impl<'q> SeriesSet<'q> for ListSeriesSet<'q> {
    fn annotations(&self) -> &Annotations {
        &self.annotations
    }
}

/// Reads every sample of an iterator into a vector (for tests and small
/// result sets), failing with the iterator's error if it stopped early.
pub fn collect_samples(iterator: &mut dyn SampleIterator) -> Result<Vec<Sample>, StorageError> {
    let mut samples = Vec::new();
    while iterator.next() {
        samples.push(iterator.at());
    }
    match iterator.err() {
        Some(error) => Err(error.clone()),
        None => Ok(samples),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(ts: &[i64]) -> Vec<Sample> {
        ts.iter().map(|&t| Sample::new(t, t as f64)).collect()
    }

    #[test]
    fn slice_iterator_next_and_at() {
        let data = samples(&[10, 20, 30]);
        let mut it = SliceSampleIterator::new(&data);
        assert!(it.next());
        assert_eq!(it.at(), Sample::new(10, 10.0));
        assert!(it.next());
        assert!(it.next());
        assert_eq!(it.at().t, 30);
        assert!(!it.next());
        assert!(!it.next(), "stays exhausted");
        assert!(!it.seek(0), "seek on exhausted iterator fails");
        assert!(it.err().is_none());
    }

    #[test]
    fn slice_iterator_seek_semantics() {
        let data = samples(&[10, 20, 30, 40]);
        let mut it = SliceSampleIterator::new(&data);
        // Fresh: first sample >= t.
        assert!(it.seek(15));
        assert_eq!(it.at().t, 20);
        // Current already >= t: stays, never goes backwards.
        assert!(it.seek(5));
        assert_eq!(it.at().t, 20);
        assert!(it.seek(20));
        assert_eq!(it.at().t, 20);
        // Exact hit.
        assert!(it.seek(30));
        assert_eq!(it.at().t, 30);
        // next continues after a seek.
        assert!(it.next());
        assert_eq!(it.at().t, 40);
        // Past the end.
        assert!(!it.seek(41));
        assert!(!it.next());

        let mut fresh = SliceSampleIterator::new(&data);
        assert!(fresh.seek(i64::MIN));
        assert_eq!(fresh.at().t, 10);

        let empty: Vec<Sample> = Vec::new();
        let mut it = SliceSampleIterator::new(&empty);
        assert!(!it.seek(0));
        assert!(!it.next());
        assert_eq!(it.at().t, i64::MIN, "at() never panics");
    }

    #[test]
    fn annotations_deduplicate_and_split() {
        let mut a = Annotations::new();
        a.warn("w1");
        a.warn("w1");
        a.info("i1");
        let mut b = Annotations::new();
        b.warn("w2");
        b.info("i1");
        a.merge(b);
        assert_eq!(a.len(), 3);
        assert_eq!(a.warnings().collect::<Vec<_>>(), ["w1", "w2"]);
        assert_eq!(a.infos().collect::<Vec<_>>(), ["i1"]);
    }

    #[test]
    fn shared_handles_are_storages() {
        fn takes_storage(storage: impl Storage) -> usize {
            let mut app = storage.appender();
            let series = Labels::new([("__name__", "x")]).expect("valid");
            app.append(None, &series, 1, 1.0).expect("append");
            app.commit().expect("commit");
            let querier = storage.querier(0, 10).expect("querier");
            querier.select(false, None, &[]).expect("select").count()
        }
        let shared: Arc<dyn Storage> = Arc::new(MemStorage::new());
        assert_eq!(takes_storage(Arc::clone(&shared)), 1);
        assert_eq!(takes_storage(Arc::new(MemStorage::new())), 1);
    }

    #[test]
    fn append_error_classification() {
        assert!(AppendError::EmptyLabelSet.is_sample_rejection());
        assert!(!AppendError::Storage(StorageError::Closed).is_sample_rejection());
        let e = AppendError::OutOfOrder {
            series: Labels::new([("__name__", "up")]).expect("valid"),
            t: 1,
            last_t: 2,
        };
        assert!(e.to_string().starts_with("out of order sample"));
        assert!(e.to_string().contains("up"));
    }
}
