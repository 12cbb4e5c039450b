//! One series in the head: its labels, its chunks, its out-of-order samples,
//! the isolation marks of recent commits, and reading it back.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ember_model::labels::Labels;
use ember_model::metadata::Metadata;
use ember_model::sample::Sample;
use ember_model::storage::{SampleIterator, StorageError};

use crate::chunkenc::{XorChunk, XorIterator};
use crate::head_chunks::{ChunkFiles, ChunkRef, MappedChunk};

/// What a series needs from the head to cut chunks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkPolicy {
    /// Samples after which a chunk is cut.
    pub(crate) samples_per_chunk: u16,
    /// Block length: a chunk never spans a multiple of it.
    pub(crate) chunk_range: i64,
}

/// A series in the head. Shared (`Arc`) between the series maps, appenders
/// and queriers; all mutable state is behind `state`.
pub(crate) struct MemSeries {
    pub(crate) id: u64,
    pub(crate) labels: Labels,
    /// Newest committed in-order timestamp (`i64::MIN` when none), readable
    /// without the lock for the append fast path. Written under the lock.
    max_t: AtomicI64,
    /// Whether the WAL holds this series' definition.
    wal_logged: AtomicBool,
    /// Set (under the series lock and the commit lock) when head
    /// truncation removes the series; a commit holding it re-creates it.
    removed: AtomicBool,
    state: Mutex<SeriesState>,
}

impl std::fmt::Debug for MemSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemSeries")
            .field("id", &self.id)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

/// A full in-order chunk: its time range and where its bytes are (24
/// bytes per chunk, the only per-chunk memory a series pays).
#[derive(Debug, Clone, Copy)]
struct ClosedChunk {
    min_t: i64,
    max_t: i64,
    chunk_ref: ChunkRef,
}

/// An out-of-order sample with the commit that wrote it (0 for replayed
/// samples, which every reader sees).
#[derive(Debug, Clone, Copy)]
struct OooSample {
    t: i64,
    v: f64,
    write_id: u64,
}

/// Isolation marks: for recent commits, `(write id, in-order samples
/// before the commit)`, ascending by id. The newest is kept inline (id 0:
/// none) and older ones, needed only while a querier older than them is
/// open, in [`Extra`], so a series nobody old is watching allocates
/// nothing for them.
type Mark = (u64, u64);

/// Rarely used parts of a series, boxed so that the common series pays one
/// pointer for all of them.
#[derive(Debug, Default)]
struct Extra {
    older_marks: Vec<Mark>,
    /// Recent out-of-order samples, ascending by timestamp, each with its
    /// commit's id.
    ooo: Vec<OooSample>,
    /// Older out-of-order samples, compressed: once the buffer above holds
    /// [`OOO_CHUNK_SAMPLES`] samples that every reader sees, they become
    /// one of these. Chunks may overlap each other and the in-order chunks
    /// in time, never in timestamps.
    ooo_chunks: Vec<OooChunk>,
    metadata: Option<Metadata>,
}

/// Out-of-order samples buffered before they are compressed into a chunk
/// (fewer when chunks are cut at fewer samples).
const OOO_CHUNK_SAMPLES: usize = 32;

/// A compressed run of out-of-order samples (in memory: they are rare, and
/// the WAL has them).
#[derive(Debug)]
struct OooChunk {
    min_t: i64,
    max_t: i64,
    bytes: Box<[u8]>,
}

impl OooChunk {
    /// Its samples in `[mint, maxt]`, appended to `out`.
    fn decode_into(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<(), StorageError> {
        if self.max_t < mint || self.min_t > maxt {
            return Ok(());
        }
        let mut it = XorIterator::new(&self.bytes)
            .map_err(|e| StorageError::Corruption(format!("out-of-order chunk: {e}")))?;
        while it.next() {
            let (t, v) = it.at();
            if t > maxt {
                break;
            }
            if t >= mint {
                out.push(Sample::new(t, v));
            }
        }
        match it.err() {
            Some(e) => Err(StorageError::Corruption(format!("out-of-order chunk: {e}"))),
            None => Ok(()),
        }
    }
}

/// The lock-protected part of a series.
#[derive(Debug, Default)]
pub(crate) struct SeriesState {
    /// Full in-order chunks, oldest first.
    closed: Vec<ClosedChunk>,
    /// The in-order chunk being filled.
    open: Option<XorChunk>,
    /// In-order samples ever appended (closed and open chunks together,
    /// and those truncated away).
    total: u64,
    /// In-order samples dropped by head truncation: the in-order index of
    /// the first chunk in `closed`.
    truncated: u64,
    /// Value bits of the newest in-order sample.
    last_v_bits: u64,
    /// The newest commit's isolation mark.
    latest_mark: Mark,
    /// Byte size of the last chunk cut, to size the next one's buffer.
    last_chunk_len: u16,
    extra: Option<Box<Extra>>,
}

impl MemSeries {
    pub(crate) fn new(id: u64, labels: Labels) -> Self {
        Self {
            id,
            labels,
            max_t: AtomicI64::new(i64::MIN),
            wal_logged: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            state: Mutex::new(SeriesState::default()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SeriesState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Newest committed in-order timestamp, `i64::MIN` when none.
    pub(crate) fn max_t(&self) -> i64 {
        self.max_t.load(Ordering::Acquire)
    }

    pub(crate) fn wal_logged(&self) -> bool {
        self.wal_logged.load(Ordering::Acquire)
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    pub(crate) fn set_wal_logged(&self) {
        self.wal_logged.store(true, Ordering::Release);
    }

    /// Attaches a chunk found in the chunk files at start-up. Chunks must
    /// come oldest first and before any sample is appended.
    pub(crate) fn attach_mapped(&self, min_t: i64, max_t: i64, chunk_ref: ChunkRef) {
        let mut state = self.lock();
        if state.open.is_some() || max_t < min_t || min_t <= self.max_t() {
            return;
        }
        state.total += u64::from(chunk_ref.num_samples());
        state.closed.push(ClosedChunk {
            min_t,
            max_t,
            chunk_ref,
        });
        self.max_t.store(max_t, Ordering::Release);
    }

    /// Value bits of the newest in-order sample (after replaying mapped
    /// chunks it must be read from the last chunk).
    pub(crate) fn load_last_value(&self, files: &ChunkFiles) {
        let mut state = self.lock();
        let Some(last) = state.closed.last() else {
            return;
        };
        let bits = match read_closed(last, files) {
            Ok(bytes) => {
                let mut last_bits = None;
                if let Ok(mut it) = XorIterator::new(bytes.as_slice()) {
                    while it.next() {
                        last_bits = Some(it.at().1.to_bits());
                    }
                }
                last_bits
            }
            Err(_) => None,
        };
        if let Some(bits) = bits {
            state.last_v_bits = bits;
        }
    }
}

/// Bytes a snapshot holds: a closed chunk (mapped) or a copy of the open
/// one.
pub(crate) enum ChunkBytes {
    Mapped(MappedChunk),
    Owned(Vec<u8>),
}

impl ChunkBytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            ChunkBytes::Mapped(m) => m.bytes(),
            ChunkBytes::Owned(b) => b,
        }
    }
}

fn read_closed(chunk: &ClosedChunk, files: &ChunkFiles) -> Result<ChunkBytes, StorageError> {
    files
        .read(chunk.chunk_ref)
        .map(ChunkBytes::Mapped)
        .map_err(|e| StorageError::Corruption(e.to_string()))
}

impl SeriesState {
    pub(crate) fn metadata(&self) -> Option<&Metadata> {
        self.extra.as_ref()?.metadata.as_ref()
    }

    pub(crate) fn set_metadata(&mut self, metadata: Metadata) {
        self.extra.get_or_insert_default().metadata = Some(metadata);
    }

    fn ooo(&self) -> &[OooSample] {
        self.extra.as_ref().map_or(&[], |e| &e.ooo)
    }

    /// In-order samples a reader with `read_id` sees: those before the
    /// first commit newer than the reader.
    fn visible(&self, read_id: u64) -> u64 {
        let older = self.extra.as_ref().map_or(&[][..], |e| &e.older_marks);
        older
            .iter()
            .chain(std::iter::once(&self.latest_mark))
            .find(|&&(id, _)| id > read_id)
            .map_or(self.total, |&(_, before)| before)
    }

    /// Records that commit `write_id` starts adding in-order samples now,
    /// forgetting marks no reader can need (ids at or below
    /// `low_watermark`).
    fn mark_commit(&mut self, write_id: u64, low_watermark: u64) {
        let latest = self.latest_mark;
        if latest.0 == write_id {
            return;
        }
        if latest.0 > low_watermark {
            self.extra.get_or_insert_default().older_marks.push(latest);
        }
        if let Some(extra) = self.extra.as_mut()
            && !extra.older_marks.is_empty()
        {
            let keep_from = extra
                .older_marks
                .partition_point(|&(id, _)| id <= low_watermark);
            extra.older_marks.drain(..keep_from);
            if extra.older_marks.is_empty() {
                extra.older_marks = Vec::new();
            }
        }
        self.latest_mark = (write_id, self.total);
    }

    /// The value bits of the committed sample at exactly `t`, if any.
    pub(crate) fn find(
        &self,
        series: &MemSeries,
        t: i64,
        files: &ChunkFiles,
    ) -> Result<Option<u64>, StorageError> {
        if self.total > 0 && t == series.max_t() {
            return Ok(Some(self.last_v_bits));
        }
        let ooo = self.ooo();
        if let Ok(i) = ooo.binary_search_by_key(&t, |s| s.t) {
            return Ok(Some(ooo[i].v.to_bits()));
        }
        if let Some(extra) = &self.extra {
            let mut found = Vec::new();
            for chunk in &extra.ooo_chunks {
                found.clear();
                chunk.decode_into(t, t, &mut found)?;
                if let Some(sample) = found.first() {
                    return Ok(Some(sample.v.to_bits()));
                }
            }
        }
        let search = |bytes: &[u8]| -> Result<Option<u64>, StorageError> {
            let mut it =
                XorIterator::new(bytes).map_err(|e| StorageError::Corruption(e.to_string()))?;
            if it.seek(t) && it.at().0 == t {
                return Ok(Some(it.at().1.to_bits()));
            }
            match it.err() {
                Some(e) => Err(StorageError::Corruption(e.to_string())),
                None => Ok(None),
            }
        };
        if let Some(open) = &self.open
            && open.min_time().is_some_and(|min| min <= t)
        {
            return search(open.bytes());
        }
        let i = self.closed.partition_point(|c| c.max_t < t);
        match self.closed.get(i) {
            Some(chunk) if chunk.min_t <= t => search(read_closed(chunk, files)?.as_slice()),
            _ => Ok(None),
        }
    }

    /// Appends an in-order sample (`t` newer than every committed one),
    /// cutting the open chunk first when it is full or `t` crosses a block
    /// boundary. `write_id` is `None` during replay (no readers to hide it
    /// from).
    pub(crate) fn append_in_order(
        &mut self,
        series: &MemSeries,
        t: i64,
        v: f64,
        commit: Option<(u64, u64)>,
        policy: ChunkPolicy,
        files: &ChunkFiles,
    ) {
        if let Some((write_id, low_watermark)) = commit {
            self.mark_commit(write_id, low_watermark);
        }
        let cut = self.open.as_ref().is_some_and(|open| {
            open.num_samples() >= policy.samples_per_chunk
                || open.min_time().is_some_and(|min| {
                    let boundary =
                        (min.div_euclid(policy.chunk_range) + 1).saturating_mul(policy.chunk_range);
                    t >= boundary
                })
        });
        if cut && let Some(open) = self.open.take() {
            self.close_chunk(series, open, files);
        }
        let capacity = match self.last_chunk_len {
            0 => 128,
            // A little slack: the next chunk is usually about as large.
            len => usize::from(len) + usize::from(len) / 8 + 8,
        };
        let open = self
            .open
            .get_or_insert_with(|| XorChunk::with_capacity(capacity));
        if open.append(t, v).is_err() {
            // Unreachable while chunks are cut at `samples_per_chunk`
            // (at most u16::MAX); close the full chunk and start anew.
            if let Some(full) = self.open.take() {
                self.close_chunk(series, full, files);
            }
            let mut fresh = XorChunk::with_capacity(capacity);
            let _ = fresh.append(t, v);
            self.open = Some(fresh);
        }
        self.total += 1;
        self.last_v_bits = v.to_bits();
        series.max_t.store(t, Ordering::Release);
    }

    fn close_chunk(&mut self, series: &MemSeries, chunk: XorChunk, files: &ChunkFiles) {
        let (Some(min_t), Some(max_t)) = (chunk.min_time(), chunk.max_time()) else {
            return;
        };
        self.last_chunk_len = u16::try_from(chunk.bytes().len()).unwrap_or(u16::MAX);
        let chunk_ref = match files.write(series.id, min_t, max_t, chunk.bytes()) {
            Ok(r) => r,
            Err(error) => {
                // The samples are safe in the WAL; keeping the chunk in
                // memory costs RSS but loses nothing.
                tracing::error!(%error, series = %series.labels, "writing a full head chunk failed; keeping it in memory");
                files.keep_in_memory(chunk.into_bytes())
            }
        };
        self.closed.push(ClosedChunk {
            min_t,
            max_t,
            chunk_ref,
        });
    }

    /// Whether the series holds no sample at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_empty()
            && self.open.is_none()
            && self
                .extra
                .as_ref()
                .is_none_or(|e| e.ooo.is_empty() && e.ooo_chunks.is_empty())
    }

    /// Drops everything before `mint`: closed chunks ending before it, the
    /// open chunk if it does, out-of-order samples before it. Returns the
    /// number of chunks dropped and the oldest timestamp left (`None`: the
    /// series is empty). Chunks never cross a block boundary, and `mint`
    /// is one, so no chunk is split.
    pub(crate) fn truncate_before(&mut self, mint: i64) -> (u64, Option<i64>) {
        let keep_from = self.closed.partition_point(|c| c.max_t < mint);
        let mut dropped = keep_from as u64;
        for chunk in self.closed.drain(..keep_from) {
            self.truncated += u64::from(chunk.chunk_ref.num_samples());
        }
        if self.closed.is_empty() {
            self.closed = Vec::new();
        }
        if let Some(open) = &self.open
            && open.max_time().is_some_and(|t| t < mint)
        {
            self.truncated += u64::from(open.num_samples());
            self.open = None;
            dropped += 1;
        }
        let mut min_left = self
            .closed
            .first()
            .map(|c| c.min_t)
            .or_else(|| self.open.as_ref().and_then(XorChunk::min_time));
        if let Some(extra) = self.extra.as_mut() {
            extra.ooo.retain(|s| s.t >= mint);
            let mut kept = Vec::new();
            for chunk in std::mem::take(&mut extra.ooo_chunks) {
                if chunk.min_t >= mint {
                    kept.push(chunk);
                } else if chunk.max_t >= mint {
                    // Re-encode the part at or after `mint`.
                    let mut samples = Vec::new();
                    if chunk.decode_into(mint, i64::MAX, &mut samples).is_ok() {
                        let mut fresh = XorChunk::with_capacity(samples.len() * 2 + 8);
                        for s in &samples {
                            let _ = fresh.append(s.t, s.v);
                        }
                        if let (Some(min_t), Some(max_t)) = (fresh.min_time(), fresh.max_time()) {
                            kept.push(OooChunk {
                                min_t,
                                max_t,
                                bytes: fresh.into_bytes().into_boxed_slice(),
                            });
                        }
                    }
                }
            }
            extra.ooo_chunks = kept;
            let ooo_min = extra
                .ooo
                .first()
                .map(|s| s.t)
                .into_iter()
                .chain(extra.ooo_chunks.iter().map(|c| c.min_t))
                .min();
            min_left = match (min_left, ooo_min) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if extra.ooo.is_empty() {
                extra.ooo = Vec::new();
            }
        }
        (dropped, min_left)
    }

    /// What a block of `[mint, maxt]` (closed) needs from this series, as
    /// a reader with `read_id` sees it: the chunks themselves when they lie
    /// wholly in the range and no out-of-order sample falls in it (the
    /// common case, copied without decoding), otherwise the samples.
    pub(crate) fn block_data(
        &self,
        read_id: u64,
        mint: i64,
        maxt: i64,
        files: &ChunkFiles,
        deleted: &[crate::block::Interval],
    ) -> Result<BlockData, StorageError> {
        let visible_end = self.visible(read_id);
        let ooo_in_range = self.ooo().iter().any(|s| s.t >= mint && s.t <= maxt)
            || self.extra.as_ref().is_some_and(|e| {
                e.ooo_chunks
                    .iter()
                    .any(|c| c.max_t >= mint && c.min_t <= maxt)
            });
        if !ooo_in_range && deleted.is_empty() {
            let mut chunks = Vec::new();
            let mut index = self.truncated;
            let mut whole = true;
            let mut consider = |min_t: i64, max_t: i64, n: u64, bytes: Option<ChunkBytes>| {
                let end = index + n;
                if max_t >= mint && min_t <= maxt {
                    if min_t < mint || max_t > maxt || end > visible_end {
                        whole = false;
                    } else if let Some(bytes) = bytes {
                        chunks.push((min_t, max_t, n as u32, bytes));
                    }
                }
                index = end;
            };
            for chunk in &self.closed {
                let n = u64::from(chunk.chunk_ref.num_samples());
                let in_range = chunk.max_t >= mint && chunk.min_t <= maxt;
                let bytes = if in_range {
                    Some(read_closed(chunk, files)?)
                } else {
                    None
                };
                consider(chunk.min_t, chunk.max_t, n, bytes);
            }
            if let Some(open) = &self.open
                && let (Some(min_t), Some(max_t)) = (open.min_time(), open.max_time())
            {
                consider(
                    min_t,
                    max_t,
                    u64::from(open.num_samples()),
                    Some(ChunkBytes::Owned(open.bytes().to_vec())),
                );
            }
            if whole {
                return Ok(BlockData::Chunks(chunks));
            }
        }
        let mut snapshot = self.snapshot(read_id, mint, maxt, files);
        snapshot.set_deleted(deleted.to_vec());
        let mut it = snapshot.iter();
        let mut samples = Vec::new();
        while it.next() {
            samples.push(it.at());
        }
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        Ok(BlockData::Samples(samples))
    }

    /// Inserts an out-of-order sample (not at an existing timestamp) from
    /// commit `write_id`, then compresses the buffered out-of-order samples
    /// into a chunk if there are enough and every reader sees them all (ids
    /// at or below `low_watermark`).
    pub(crate) fn insert_out_of_order(
        &mut self,
        t: i64,
        v: f64,
        write_id: u64,
        low_watermark: u64,
        policy: ChunkPolicy,
    ) {
        // Small chunk policies (tests) compress sooner.
        let threshold = usize::from(policy.samples_per_chunk).min(OOO_CHUNK_SAMPLES);
        let extra = self.extra.get_or_insert_default();
        let ooo = &mut extra.ooo;
        let i = ooo.partition_point(|s| s.t < t);
        if ooo.get(i).is_some_and(|s| s.t == t) {
            return;
        }
        ooo.insert(i, OooSample { t, v, write_id });
        if ooo.len() < threshold || ooo.iter().any(|s| s.write_id > low_watermark) {
            return;
        }
        let mut chunk = XorChunk::with_capacity(ooo.len() * 2 + 8);
        for sample in ooo.iter() {
            // A chunk holds far more than the buffer.
            let _ = chunk.append(sample.t, sample.v);
        }
        if let (Some(min_t), Some(max_t)) = (chunk.min_time(), chunk.max_time()) {
            extra.ooo_chunks.push(OooChunk {
                min_t,
                max_t,
                bytes: chunk.into_bytes().into_boxed_slice(),
            });
            extra.ooo = Vec::new();
        }
    }

    /// A consistent copy of what a reader with `read_id` sees in
    /// `[mint, maxt]`: references to the chunks that overlap the range (the
    /// open chunk's few bytes copied), the visible out-of-order samples.
    pub(crate) fn snapshot(
        &self,
        read_id: u64,
        mint: i64,
        maxt: i64,
        files: &ChunkFiles,
    ) -> SeriesSnapshot {
        let visible_end = self.visible(read_id);
        let mut chunks = Vec::new();
        let mut error = None;
        let mut index = self.truncated;
        for chunk in &self.closed {
            if index >= visible_end {
                break;
            }
            let n = u64::from(chunk.chunk_ref.num_samples());
            if chunk.max_t >= mint && chunk.min_t <= maxt {
                match read_closed(chunk, files) {
                    Ok(bytes) => chunks.push(SnapChunk {
                        bytes,
                        first_index: index,
                        max_t: chunk.max_t,
                    }),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            index += n;
        }
        if error.is_none()
            && index < visible_end
            && let Some(open) = &self.open
            && let (Some(min_t), Some(max_t)) = (open.min_time(), open.max_time())
            && max_t >= mint
            && min_t <= maxt
        {
            chunks.push(SnapChunk {
                bytes: ChunkBytes::Owned(open.bytes().to_vec()),
                first_index: index,
                max_t,
            });
        }
        let mut ooo: Vec<Sample> = self
            .ooo()
            .iter()
            .filter(|s| s.write_id <= read_id && mint <= s.t && s.t <= maxt)
            .map(|s| Sample::new(s.t, s.v))
            .collect();
        // Compressed out-of-order samples are visible to every reader.
        if let Some(extra) = &self.extra
            && !extra.ooo_chunks.is_empty()
        {
            for chunk in &extra.ooo_chunks {
                if let Err(e) = chunk.decode_into(mint, maxt, &mut ooo) {
                    error.get_or_insert(e);
                }
            }
            ooo.sort_unstable_by_key(|s| s.t);
        }
        SeriesSnapshot {
            chunks,
            visible_end,
            ooo,
            mint,
            maxt,
            error,
            deleted: Vec::new(),
        }
    }
}

/// A series' data for a block; see [`SeriesState::block_data`].
pub(crate) enum BlockData {
    /// Whole chunks: `(min t, max t, samples, bytes)`, ascending.
    Chunks(Vec<(i64, i64, u32, ChunkBytes)>),
    /// Samples to encode, ascending.
    Samples(Vec<Sample>),
}

struct SnapChunk {
    bytes: ChunkBytes,
    /// In-order index of the chunk's first sample.
    first_index: u64,
    max_t: i64,
}

/// What a reader sees of one series; see [`SeriesState::snapshot`].
pub(crate) struct SeriesSnapshot {
    chunks: Vec<SnapChunk>,
    /// In-order samples with an index at or past this are hidden.
    visible_end: u64,
    ooo: Vec<Sample>,
    mint: i64,
    maxt: i64,
    error: Option<StorageError>,
    /// Deleted intervals (tombstones), ascending.
    deleted: Vec<crate::block::Interval>,
}

impl std::fmt::Debug for SeriesSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesSnapshot")
            .field("chunks", &self.chunks.len())
            .field("visible_end", &self.visible_end)
            .field("ooo", &self.ooo.len())
            .finish_non_exhaustive()
    }
}

impl SeriesSnapshot {
    /// Hides the samples in `deleted` (ascending intervals).
    pub(crate) fn set_deleted(&mut self, deleted: Vec<crate::block::Interval>) {
        if deleted.is_empty() {
            return;
        }
        self.ooo
            .retain(|s| !crate::block::is_deleted(&deleted, s.t));
        self.deleted = deleted;
    }

    /// An iterator over the visible samples in range.
    pub(crate) fn iter(&self) -> HeadSampleIterator<'_> {
        HeadSampleIterator {
            in_order: InOrder {
                snapshot: self,
                next_chunk: 0,
                current: None,
                done: false,
                err: self.error.clone(),
            },
            lookahead: None,
            primed: false,
            ooo_pos: 0,
            current: None,
            exhausted: false,
        }
    }

    /// Whether any sample is visible in range.
    pub(crate) fn has_samples(&self) -> bool {
        self.error.is_some() || self.iter().next()
    }
}

/// The in-order part: chunk after chunk, trimmed to the range and the
/// visible prefix.
struct InOrder<'a> {
    snapshot: &'a SeriesSnapshot,
    next_chunk: usize,
    /// The chunk being read and the in-order index of its next sample.
    current: Option<(XorIterator<'a>, u64, i64)>,
    done: bool,
    err: Option<StorageError>,
}

impl InOrder<'_> {
    fn next(&mut self) -> Option<Sample> {
        if self.done || self.err.is_some() {
            self.done = true;
            return None;
        }
        let snapshot = self.snapshot;
        loop {
            if let Some((it, index, _)) = self.current.as_mut() {
                if *index >= snapshot.visible_end {
                    self.done = true;
                    return None;
                }
                if it.next() {
                    *index += 1;
                    let (t, v) = it.at();
                    if t < snapshot.mint || crate::block::is_deleted(&snapshot.deleted, t) {
                        continue;
                    }
                    if t > snapshot.maxt {
                        self.done = true;
                        return None;
                    }
                    return Some(Sample::new(t, v));
                }
                if let Some(e) = it.err() {
                    self.err = Some(StorageError::Corruption(format!("head chunk: {e}")));
                    self.done = true;
                    return None;
                }
                self.current = None;
            }
            let Some(chunk) = snapshot.chunks.get(self.next_chunk) else {
                self.done = true;
                return None;
            };
            self.next_chunk += 1;
            match XorIterator::new(chunk.bytes.as_slice()) {
                Ok(it) => self.current = Some((it, chunk.first_index, chunk.max_t)),
                Err(e) => {
                    self.err = Some(StorageError::Corruption(format!("head chunk: {e}")));
                    self.done = true;
                    return None;
                }
            }
        }
    }

    /// The first sample at or after `t`, skipping whole chunks that end
    /// before it.
    fn seek(&mut self, t: i64) -> Option<Sample> {
        if self
            .current
            .as_ref()
            .is_some_and(|&(_, _, max_t)| max_t < t)
        {
            self.current = None;
        }
        if self.current.is_none() {
            let chunks = &self.snapshot.chunks;
            while chunks.get(self.next_chunk).is_some_and(|c| c.max_t < t) {
                self.next_chunk += 1;
            }
        }
        loop {
            let sample = self.next()?;
            if sample.t >= t {
                return Some(sample);
            }
        }
    }
}

/// The [`SampleIterator`] of a head series: in-order chunks merged with the
/// out-of-order samples.
pub(crate) struct HeadSampleIterator<'a> {
    in_order: InOrder<'a>,
    /// The next in-order sample, not yet returned.
    lookahead: Option<Sample>,
    /// Whether `lookahead` has been filled since it was last consumed.
    primed: bool,
    ooo_pos: usize,
    current: Option<Sample>,
    exhausted: bool,
}

impl HeadSampleIterator<'_> {
    fn take_smallest(&mut self) -> bool {
        if !self.primed {
            self.lookahead = self.in_order.next();
            self.primed = true;
        }
        let ooo = self.in_order.snapshot.ooo.get(self.ooo_pos).copied();
        let next = match (self.lookahead, ooo) {
            (Some(a), Some(b)) if b.t < a.t => {
                self.ooo_pos += 1;
                b
            }
            (Some(a), other) => {
                if other.is_some_and(|b| b.t == a.t) {
                    self.ooo_pos += 1;
                }
                self.primed = false;
                a
            }
            (None, Some(b)) => {
                self.ooo_pos += 1;
                b
            }
            (None, None) => {
                self.exhausted = true;
                self.current = None;
                return false;
            }
        };
        self.current = Some(next);
        true
    }
}

impl SampleIterator for HeadSampleIterator<'_> {
    fn next(&mut self) -> bool {
        if self.exhausted {
            return false;
        }
        self.take_smallest()
    }

    fn seek(&mut self, t: i64) -> bool {
        if self.exhausted {
            return false;
        }
        if self.current.is_some_and(|s| s.t >= t) {
            return true;
        }
        if self.primed {
            if self.lookahead.is_some_and(|s| s.t < t) {
                self.lookahead = self.in_order.seek(t);
            }
        } else {
            self.lookahead = self.in_order.seek(t);
            self.primed = true;
        }
        let ooo = &self.in_order.snapshot.ooo;
        self.ooo_pos += ooo[self.ooo_pos.min(ooo.len())..].partition_point(|s| s.t < t);
        self.take_smallest()
    }

    fn at(&self) -> Sample {
        self.current.unwrap_or(Sample::new(i64::MIN, f64::NAN))
    }

    fn err(&self) -> Option<&StorageError> {
        self.in_order.err.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_hide_commits_newer_than_the_reader() {
        let mut state = SeriesState::default();
        let add = |state: &mut SeriesState, write_id, n, low_watermark| {
            state.mark_commit(write_id, low_watermark);
            state.mark_commit(write_id, low_watermark); // idempotent
            state.total += n;
        };
        add(&mut state, 1, 10, 0);
        assert_eq!(state.visible(0), 0);
        assert_eq!(state.visible(1), 10);
        add(&mut state, 5, 5, 0);
        add(&mut state, 6, 5, 0);
        assert_eq!(state.visible(0), 0);
        assert_eq!(state.visible(4), 10);
        assert_eq!(state.visible(5), 15);
        assert_eq!(state.visible(6), 20);
        // Once every reader has moved past 5, the older marks go.
        add(&mut state, 7, 5, 6);
        assert!(
            state
                .extra
                .as_ref()
                .is_some_and(|e| e.older_marks.is_empty())
        );
        assert_eq!(state.visible(6), 20);
        assert_eq!(state.visible(7), 25);
    }

    #[test]
    fn series_state_stays_small() {
        // The per-series budget is 1 KiB in total; the inline state is the
        // largest fixed part of it.
        assert!(
            std::mem::size_of::<SeriesState>() <= 224,
            "{}",
            std::mem::size_of::<SeriesState>()
        );
        assert_eq!(std::mem::size_of::<ClosedChunk>(), 24);
    }
}
