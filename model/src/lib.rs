//! Ember's data model.
//!
//! Labels, matchers, samples, metric metadata, relabeling, exposition-format
//! parsers and writers, and the storage traits (`Appender`, `Querier`) that
//! the TSDB implements and the scrape loop and PromQL engine use. This crate
//! does no I/O.

pub mod exposition;
pub mod histogram;
pub mod labels;
pub mod matcher;
pub mod metadata;
pub mod relabel;
pub mod sample;
pub mod storage;

pub use histogram::{FloatHistogram, Histogram};
pub use labels::{Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher};
pub use metadata::{Metadata, MetricType};
pub use sample::{Exemplar, STALE_NAN_BITS, Sample, is_stale_nan, stale_nan};
pub use storage::{
    Annotations, AppendError, Appendable, Appender, ExemplarQueryable, MemStorage, Querier,
    Queryable, SampleIterator, SelectHints, Series, SeriesRef, SeriesSet, Storage, StorageError,
};
