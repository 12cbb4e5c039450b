//! The head: the in-memory, queryable part of the database that every
//! sample enters first.
//!
//! - Series live in a map sharded by label hash (and a second one by id),
//!   each shard behind its own lock ([`Head::get_or_create`],
//!   [`Head::series`]); a series ([`series::MemSeries`]) has its own mutex.
//! - [`postings::Postings`] is the inverted index that turns matchers into
//!   sorted lists of series ids.
//! - [`isolation::Isolation`] decides which commits a querier sees.
//! - Full chunks go to the memory-mapped files of [`crate::head_chunks`].
//!
//! The head is driven by [`crate::Db`], which owns the WAL: appends arrive
//! through [`appender::HeadAppender`] and reads through
//! [`querier::HeadQuerier`].
//!
//! # Lock order
//!
//! A thread may take, in this order and never the other way round: the
//! commit lock (the WAL mutex in `Db`), a shard's hash map, a shard's id
//! map, the postings, a series' mutex, the chunk file writer. Readers take
//! the postings and then series mutexes one at a time.

pub(crate) mod appender;
pub(crate) mod isolation;
pub(crate) mod postings;
pub(crate) mod querier;
pub(crate) mod series;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use ember_model::labels::Labels;
use ember_model::storage::{AppendError, StorageError};

use crate::head_chunks::ChunkFiles;
use isolation::Isolation;
use postings::Postings;
use series::{ChunkPolicy, MemSeries};

/// Number of shards of the series maps: enough that concurrent appenders
/// rarely meet on a lock.
const SHARDS: usize = 256;

/// A hasher for keys that are already well distributed (label hashes) or
/// sequential (series ids): one multiplication instead of SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A `HashMap` keyed by ids or hashes.
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default)]
struct Shard {
    /// Series by label hash; a second series with the same hash goes to
    /// `collisions`.
    by_hash: RwLock<IdMap<Arc<MemSeries>>>,
    collisions: RwLock<HashMap<Labels, Arc<MemSeries>>>,
    /// Series by id.
    by_id: RwLock<IdMap<Arc<MemSeries>>>,
}

/// Admission rules for samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadOptions {
    pub(crate) min_valid_time: i64,
    pub(crate) out_of_order_window: i64,
    pub(crate) chunk_policy: ChunkPolicy,
}

/// The head. See the [module docs](self).
pub(crate) struct Head {
    pub(crate) options: HeadOptions,
    shards: Box<[Shard]>,
    postings: RwLock<Postings>,
    /// The next series id to issue.
    next_id: AtomicU64,
    pub(crate) isolation: Arc<Isolation>,
    pub(crate) files: ChunkFiles,
    /// Newest committed timestamp of any sample (`i64::MIN` when none); the
    /// out-of-order window is measured back from it.
    max_t: AtomicI64,
    /// Oldest timestamp of any sample in the head (`i64::MAX` when none),
    /// which decides when the head is cut into a block.
    min_t: AtomicI64,
    /// Samples older than this are refused: the configured minimum, raised
    /// to the end of the newest block when the head is cut.
    min_valid: AtomicI64,
    num_series: AtomicU64,
    /// Deleted intervals by series id (see [`crate::Db::delete`]).
    tombstones: RwLock<crate::block::Tombstones>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("options", &self.options)
            .field("num_series", &self.num_series.load(Ordering::Relaxed))
            .field("max_t", &self.max_t.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What the admission check decided for a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Store it.
    Add,
    /// An identical sample is stored already.
    AlreadyPresent,
}

impl Head {
    pub(crate) fn new(options: HeadOptions, files: ChunkFiles) -> Self {
        Self {
            options,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            postings: RwLock::new(Postings::default()),
            next_id: AtomicU64::new(1),
            isolation: Arc::new(Isolation::default()),
            files,
            max_t: AtomicI64::new(i64::MIN),
            min_t: AtomicI64::new(i64::MAX),
            min_valid: AtomicI64::new(options.min_valid_time),
            num_series: AtomicU64::new(0),
            tombstones: RwLock::new(crate::block::Tombstones::default()),
        }
    }

    fn shard(&self, key: u64) -> &Shard {
        &self.shards[(key % SHARDS as u64) as usize]
    }

    /// The series with id `id`.
    pub(crate) fn series(&self, id: u64) -> Option<Arc<MemSeries>> {
        self.shard(id)
            .by_id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// The series with `labels`, if it exists.
    pub(crate) fn series_by_labels(&self, labels: &Labels, hash: u64) -> Option<Arc<MemSeries>> {
        let shard = self.shard(hash);
        let by_hash = shard.by_hash.read().unwrap_or_else(PoisonError::into_inner);
        match by_hash.get(&hash) {
            Some(series) if series.labels == *labels => Some(Arc::clone(series)),
            Some(_) => shard
                .collisions
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(labels)
                .cloned(),
            None => None,
        }
    }

    /// The series with `labels`, created (with a new id) if needed.
    pub(crate) fn get_or_create(&self, labels: &Labels) -> Result<Arc<MemSeries>, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::EmptyLabelSet);
        }
        let hash = labels.hash();
        if let Some(series) = self.series_by_labels(labels, hash) {
            return Ok(series);
        }
        Ok(self.create(labels, hash, None))
    }

    /// Creates the series with a given id (during replay). If a series with
    /// these labels exists already, that one is returned instead.
    pub(crate) fn create_with_id(&self, labels: &Labels, id: u64) -> Arc<MemSeries> {
        let hash = labels.hash();
        if let Some(series) = self.series_by_labels(labels, hash) {
            return series;
        }
        self.next_id.fetch_max(id + 1, Ordering::AcqRel);
        self.create(labels, hash, Some(id))
    }

    /// Makes sure ids below `id` are never issued (ids found in chunk files
    /// whose series the WAL lost must not be reused).
    pub(crate) fn reserve_ids_below(&self, id: u64) {
        self.next_id.fetch_max(id, Ordering::AcqRel);
    }

    fn create(&self, labels: &Labels, hash: u64, id: Option<u64>) -> Arc<MemSeries> {
        let shard = self.shard(hash);
        let mut by_hash = shard
            .by_hash
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Another thread may have created it since the read above.
        let existing = match by_hash.get(&hash) {
            Some(series) if series.labels == *labels => Some(Arc::clone(series)),
            Some(_) => shard
                .collisions
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(labels)
                .cloned(),
            None => None,
        };
        if let Some(series) = existing {
            return series;
        }
        let id = id.unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::AcqRel));
        let series = Arc::new(MemSeries::new(id, labels.clone()));
        match by_hash.entry(hash) {
            Entry::Occupied(_) => {
                shard
                    .collisions
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(labels.clone(), Arc::clone(&series));
            }
            Entry::Vacant(slot) => {
                slot.insert(Arc::clone(&series));
            }
        }
        self.shard(id)
            .by_id
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&series));
        self.postings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add(id, labels);
        drop(by_hash);
        self.num_series.fetch_add(1, Ordering::Relaxed);
        series
    }

    /// Number of series (with or without samples).
    pub(crate) fn num_series(&self) -> u64 {
        self.num_series.load(Ordering::Relaxed)
    }

    /// Newest committed timestamp, `i64::MIN` when empty.
    pub(crate) fn max_t(&self) -> i64 {
        self.max_t.load(Ordering::Acquire)
    }

    pub(crate) fn observe_max_t(&self, t: i64) {
        self.max_t.fetch_max(t, Ordering::AcqRel);
    }

    /// Oldest timestamp in the head, `i64::MAX` when empty.
    pub(crate) fn min_t(&self) -> i64 {
        self.min_t.load(Ordering::Acquire)
    }

    pub(crate) fn observe_min_t(&self, t: i64) {
        self.min_t.fetch_min(t, Ordering::AcqRel);
    }

    /// Samples older than this are refused with `OutOfBounds`.
    pub(crate) fn min_valid(&self) -> i64 {
        self.min_valid.load(Ordering::Acquire)
    }

    /// Raises the admission floor (never lowers it).
    pub(crate) fn raise_min_valid(&self, t: i64) {
        self.min_valid.fetch_max(t, Ordering::AcqRel);
    }

    /// Deleted intervals of series `id` (usually none: one read lock).
    pub(crate) fn deleted(&self, id: u64) -> Vec<crate::block::Interval> {
        let tombstones = self
            .tombstones
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if tombstones.is_empty() {
            return Vec::new();
        }
        tombstones.get(id).to_vec()
    }

    /// Deletes `[mint, maxt]` of series `id`.
    pub(crate) fn add_tombstone(&self, id: u64, mint: i64, maxt: i64) {
        self.tombstones
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add(id, mint, maxt);
    }

    /// Every series, in no particular order.
    pub(crate) fn all_series(&self) -> Vec<Arc<MemSeries>> {
        let mut out = Vec::with_capacity(self.num_series() as usize);
        for shard in self.shards.iter() {
            out.extend(
                shard
                    .by_id
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .cloned(),
            );
        }
        out
    }

    /// Drops every sample older than `mint` from the head: whole chunks
    /// before it and out-of-order samples before it, and deletes chunk
    /// files holding only older chunks. Returns the series left empty,
    /// for [`Head::remove_empty`]. The caller has made sure that no
    /// querier that could still need the dropped data is open, and that
    /// no sample before `mint` can be committed any more
    /// ([`Head::raise_min_valid`] under the commit lock).
    pub(crate) fn truncate(&self, mint: i64) -> (TruncateStats, Vec<Arc<MemSeries>>) {
        self.raise_min_valid(mint);
        let mut stats = TruncateStats::default();
        let mut empty: Vec<Arc<MemSeries>> = Vec::new();
        // Recomputed from the series; commits running meanwhile lower it
        // with `observe_min_t`, and the scan's result is merged in with
        // `fetch_min`, so neither overwrites the other.
        self.min_t.store(i64::MAX, Ordering::Release);
        let mut new_min = i64::MAX;
        for series in self.all_series() {
            let (chunks_dropped, min_left) = series.lock().truncate_before(mint);
            stats.chunks_removed += chunks_dropped;
            match min_left {
                Some(t) => new_min = new_min.min(t),
                None => empty.push(series),
            }
        }
        self.min_t.fetch_min(new_min, Ordering::AcqRel);
        stats.chunk_files_removed = self.files.truncate_before(mint);
        self.tombstones
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .truncate_before(mint);
        (stats, empty)
    }

    /// Removes the series of `candidates` that are still empty from the
    /// maps and the postings, marking them removed. The caller holds the
    /// commit lock, so no commit is publishing into them; a commit that
    /// holds one later re-creates it (see the appender).
    pub(crate) fn remove_empty(&self, candidates: Vec<Arc<MemSeries>>) -> u64 {
        let mut removed: Vec<Arc<MemSeries>> = Vec::new();
        for series in candidates {
            let state = series.lock();
            if state.is_empty() {
                series.mark_removed();
                drop(state);
                removed.push(series);
            }
        }
        for series in &removed {
            let hash = series.labels.hash();
            let shard = self.shard(hash);
            {
                let mut by_hash = shard
                    .by_hash
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if by_hash.get(&hash).is_some_and(|s| Arc::ptr_eq(s, series)) {
                    by_hash.remove(&hash);
                    // Promote a colliding series into the primary map.
                    let mut collisions = shard
                        .collisions
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    let promoted = collisions
                        .iter()
                        .find(|(labels, _)| labels.hash() == hash)
                        .map(|(labels, s)| (labels.clone(), Arc::clone(s)));
                    if let Some((labels, s)) = promoted {
                        collisions.remove(&labels);
                        by_hash.insert(hash, s);
                    }
                } else {
                    shard
                        .collisions
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&series.labels);
                }
            }
            self.shard(series.id)
                .by_id
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&series.id);
        }
        if !removed.is_empty() {
            let mut tombstones = self
                .tombstones
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for series in &removed {
                tombstones.remove(series.id);
            }
            drop(tombstones);
            self.postings
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(removed.iter().map(|s| (s.id, &s.labels)));
            self.num_series
                .fetch_sub(removed.len() as u64, Ordering::Relaxed);
        }
        removed.len() as u64
    }
    pub(crate) fn postings(&self) -> std::sync::RwLockReadGuard<'_, Postings> {
        self.postings.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks `(t, v)` for `series` against its committed samples and the
    /// appender's own (`pending`, `None` at commit time), with the rules the
    /// [`ember_model::storage::Appender`] contract lays down.
    pub(crate) fn admit(
        &self,
        series: &MemSeries,
        pending: Option<&dyn PendingView>,
        t: i64,
        v: f64,
    ) -> Result<Admission, AppendError> {
        let options = self.options;
        let min_valid = self.min_valid();
        if t < min_valid {
            return Err(AppendError::OutOfBounds {
                series: series.labels.clone(),
                t,
                min_valid_t: min_valid,
            });
        }
        let committed_max = Some(series.max_t()).filter(|&t| t != i64::MIN);
        let pending_max = pending.and_then(|p| p.max_t());
        let last_t = committed_max.max(pending_max);
        if let Some(last_t) = last_t
            && t < last_t
        {
            if options.out_of_order_window <= 0 {
                return Err(AppendError::OutOfOrder {
                    series: series.labels.clone(),
                    t,
                    last_t,
                });
            }
            let newest = self.max_t().max(last_t);
            let horizon = newest.saturating_sub(options.out_of_order_window);
            if t < horizon {
                return Err(AppendError::TooOld {
                    series: series.labels.clone(),
                    t,
                    min_valid_t: horizon,
                });
            }
        }
        if last_t.is_some_and(|last| t <= last) {
            let committed = if committed_max.is_some_and(|max| t <= max) {
                series.lock().find(series, t, &self.files)?
            } else {
                None
            };
            let stored = committed.or_else(|| pending.and_then(|p| p.find(t)));
            if let Some(bits) = stored {
                return if bits == v.to_bits() {
                    Ok(Admission::AlreadyPresent)
                } else {
                    Err(AppendError::DuplicateSampleForTimestamp {
                        series: series.labels.clone(),
                        t,
                        existing: f64::from_bits(bits),
                        new: v,
                    })
                };
            }
        }
        Ok(Admission::Add)
    }
}

/// What [`Head::truncate`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TruncateStats {
    pub(crate) chunks_removed: u64,
    pub(crate) chunk_files_removed: usize,
}

/// An appender's buffered samples of one series, as the admission check
/// sees them.
pub(crate) trait PendingView {
    /// Newest buffered timestamp.
    fn max_t(&self) -> Option<i64>;
    /// Value bits of the buffered sample at exactly `t`.
    fn find(&self, t: i64) -> Option<u64>;
}

impl From<crate::head_chunks::ChunkFileError> for StorageError {
    fn from(error: crate::head_chunks::ChunkFileError) -> Self {
        StorageError::other(error)
    }
}
