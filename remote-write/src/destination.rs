//! Where a queue's batches go: the [`Destination`] contract.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::encode::Batch;

/// The verdict on one attempt to send a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The destination has the whole batch.
    Sent,
    /// The batch may succeed later (network error, 5xx, 429 with
    /// `retry_on_http_429`): the shard keeps it and retries with backoff.
    Retryable {
        /// What went wrong, for the log.
        message: String,
        /// How long the destination asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The batch will never succeed (4xx, invalid data): the shard drops it
    /// and counts its samples as failed.
    Permanent {
        /// What went wrong, for the log.
        message: String,
    },
}

/// A boxed future returned by [`Destination::send`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

/// One endpoint of a queue: an HTTP remote-write receiver or a
/// remote-storage plugin.
///
/// Contract: a shard calls `send` for one batch at a time and does not send
/// its next batch until the previous one is `Sent` or `Permanent`, so
/// batches of one shard arrive in order. Several shards call `send`
/// concurrently. `send` must finish by itself (a request timeout) rather
/// than hang: a hung send holds the shard, and its samples stay
/// unacknowledged until the queue stops.
pub trait Destination: Send + Sync + std::fmt::Debug + 'static {
    /// Sends one batch. Batches with no series carry metadata only
    /// ([`Batch::metadata`]); a destination that has no use for metadata
    /// answers `Sent`.
    fn send<'a>(&'a self, batch: &'a Batch) -> SendFuture<'a>;
}
