//! The life cycle of data after the head: cutting the head into blocks,
//! truncating the head and the WAL, compacting blocks, retention.
//!
//! All of it runs in [`Db::compact`], serialised by the maintenance mutex,
//! from the background thread or a caller:
//!
//! 1. **Head → block.** While the head spans more than 1.5 block ranges,
//!    the oldest range `[mint, mint + range)` (aligned to the range) is
//!    written as a level-1 block. First the head's admission floor is
//!    raised to the block's end under the commit lock, so no sample for
//!    the range can be committed once the block is being written; then a
//!    reader snapshot of the head is written with [`BlockWriter`] (whole
//!    chunks copied, series with out-of-order samples re-encoded).
//! 2. **Head truncation.** The new block is published in the block list,
//!    then truncation waits for queriers that saw the old list, drops the
//!    head's data before the block's end, removes series left empty (under
//!    the commit lock), deletes head chunk files holding only older chunks,
//!    and checkpoints the WAL (segments before the current one, keeping
//!    the series still in the head and samples at or after the block's
//!    end) without holding the commit lock.
//! 3. **Compaction.** Adjacent blocks are merged into blocks of the next
//!    range (ranges grow by 3× from the block duration up to the maximum
//!    block duration), overlapping blocks into one (vertical compaction).
//!    The new block lists its parents, so a crash before they are deleted
//!    is repaired at start-up.
//! 4. **Retention.** Blocks wholly older than the retention time, and the
//!    oldest blocks while the total size exceeds the retention size, are
//!    deleted.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use ember_model::labels::Labels;
use ember_model::sample::Sample;

use super::{Db, DbInner, TsdbError};
use crate::block::{
    Block, BlockChunk, BlockError, BlockMeta, BlockWriter, ChunkIterator, ChunkMeta, META_FILE,
    TMP_DELETION_SUFFIX, Tombstones, is_ulid,
};
use crate::head::series::BlockData;

/// How long head truncation waits for queriers that may still read the
/// data it drops before it gives up until the next run.
const READER_WAIT: Duration = Duration::from_secs(120);

/// Progress of long compactions is logged this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What one [`Db::compact`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Blocks written from the head.
    pub head_blocks: Vec<BlockMeta>,
    /// Blocks written by compacting other blocks.
    pub compacted: Vec<BlockMeta>,
    /// ULIDs of blocks deleted by retention.
    pub retention_deleted: Vec<String>,
}

/// Opens the blocks in `dir` at start-up: deletes directories left by an
/// interrupted block write or deletion, and blocks that a compaction
/// already merged into another (their ULID is among its parents).
pub(crate) fn open_blocks(dir: &Path) -> Result<Vec<Arc<Block>>, TsdbError> {
    let io = |source| TsdbError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut blocks = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ulid_prefix = name.split('.').next().unwrap_or("");
        if !is_ulid(ulid_prefix) || !path.is_dir() {
            continue;
        }
        if name.contains(".tmp") || !path.join(META_FILE).exists() {
            tracing::warn!(dir = %path.display(), "removing an incomplete block directory (interrupted block write or deletion)");
            fs::remove_dir_all(&path).map_err(|source| TsdbError::Io {
                path: path.clone(),
                source,
            })?;
            continue;
        }
        blocks.push(Arc::new(Block::open(&path)?));
    }
    let superseded: HashSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.parents.iter().map(|p| p.ulid.clone()))
        .collect();
    let mut kept = Vec::with_capacity(blocks.len());
    for block in blocks {
        if superseded.contains(&block.meta().ulid) {
            tracing::info!(block = %block.meta().ulid, "removing a block already compacted into another");
            delete_block_dir(block.dir())?;
        } else {
            kept.push(block);
        }
    }
    kept.sort_by(|a, b| {
        (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
    });
    for block in &kept {
        let m = block.meta();
        tracing::info!(block = %m.ulid, min_time = m.min_time, max_time = m.max_time, series = m.stats.num_series, samples = m.stats.num_samples, "TSDB block loaded");
    }
    Ok(kept)
}

/// Deletes a block directory: renamed first, so a crash midway leaves a
/// directory that start-up recognises and removes.
pub(crate) fn delete_block_dir(dir: &Path) -> Result<(), TsdbError> {
    let io = |source| TsdbError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut doomed = dir.as_os_str().to_owned();
    doomed.push(TMP_DELETION_SUFFIX);
    fs::rename(dir, &doomed).map_err(io)?;
    fs::remove_dir_all(&doomed).map_err(io)?;
    if let Some(parent) = dir.parent() {
        crate::block::sync_dir(parent)?;
    }
    Ok(())
}

/// The compaction ranges: the block duration times 1, 3, 9, ... up to the
/// maximum block duration.
pub(crate) fn ranges(min: i64, max: i64) -> Vec<i64> {
    let mut out = vec![min];
    let mut r = min;
    while let Some(next) = r.checked_mul(3) {
        if next > max {
            break;
        }
        out.push(next);
        r = next;
    }
    out
}

/// Which blocks to compact next (ascending by `min_time`), if any:
/// overlapping blocks first, then Prometheus's rule — for each range above
/// the smallest, the first group of two or more blocks inside one aligned
/// range that either fills the range or ends before the newest block
/// (which is never compacted, so that it stays available to backups for
/// a while as it is).
pub(crate) fn plan(blocks: &[BlockMeta], ranges: &[i64]) -> Option<Vec<BlockMeta>> {
    if blocks.len() < 2 {
        return None;
    }
    // Overlaps: the first maximal run of mutually overlapping blocks.
    let mut run: Vec<&BlockMeta> = Vec::new();
    let mut run_end = i64::MIN;
    for b in blocks {
        if !run.is_empty() && b.min_time < run_end {
            run.push(b);
            run_end = run_end.max(b.max_time);
            continue;
        }
        if run.len() > 1 {
            break;
        }
        run = vec![b];
        run_end = b.max_time;
    }
    if run.len() > 1 {
        return Some(run.into_iter().cloned().collect());
    }
    let (newest, rest) = blocks.split_last()?;
    let high = newest.min_time;
    for &range in ranges.iter().skip(1) {
        let mut i = 0;
        while i < rest.len() {
            let start = rest[i].min_time.div_euclid(range) * range;
            let end = start + range;
            let mut j = i;
            while j < rest.len() && rest[j].min_time >= start && rest[j].max_time <= end {
                j += 1;
            }
            if j == i {
                i += 1;
                continue;
            }
            let group = &rest[i..j];
            let (mint, maxt) = (group[0].min_time, group[group.len() - 1].max_time);
            if group.len() > 1 && (maxt - mint == range || maxt <= high) {
                return Some(group.to_vec());
            }
            i = j;
        }
    }
    None
}

impl Db {
    /// Runs the data life cycle once: cuts the head into blocks while it
    /// spans more than 1.5 block lengths (admission raised to the block's
    /// end first, so nothing is lost), truncates head and WAL once no older
    /// querier needs the data, compacts blocks (3x ranges, overlaps first),
    /// applies retention. Called every
    /// [`DbOptions::compaction_interval`](super::DbOptions) by a
    /// background thread; callers may run it at any time (runs are
    /// serialised).
    ///
    /// # Errors
    /// [`TsdbError::Closed`], and I/O or block errors (the run stops at the
    /// first; what was done before stays done, and nothing half-done is
    /// visible).
    pub fn compact(&self) -> Result<CompactionReport, TsdbError> {
        let inner = &self.inner;
        let _maintenance = inner
            .maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if inner.is_closed() {
            return Err(TsdbError::Closed);
        }
        let mut report = CompactionReport::default();
        let range = inner.options.block_duration_ms;
        while !inner.is_stopping() {
            let head_min = inner.head.min_t();
            let blocks_max = inner.blocks_max_t();
            if head_min != i64::MAX && head_min < blocks_max {
                // The head still holds data a block covers (a truncation
                // that gave up waiting for readers): truncate first.
                if !truncate_head(inner, blocks_max)? {
                    break;
                }
                continue;
            }
            let head_max = inner.head.max_t();
            if head_min == i64::MAX || head_max.saturating_sub(head_min) <= range / 2 * 3 {
                break;
            }
            let mint = head_min.div_euclid(range) * range;
            let maxt = mint + range;
            match write_head_block(inner, mint, maxt) {
                Ok(Some(meta)) => report.head_blocks.push(meta),
                Ok(None) => {}
                Err(e) => {
                    inner
                        .counters
                        .compactions_failed
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
            inner.counters.compactions.fetch_add(1, Ordering::Relaxed);
            if !truncate_head(inner, maxt)? {
                break;
            }
        }
        let ranges = ranges(range, inner.options.max_block_duration_ms);
        while !inner.is_stopping() {
            let metas: Vec<BlockMeta> = inner.blocks().iter().map(|b| b.meta().clone()).collect();
            let Some(group) = plan(&metas, &ranges) else {
                break;
            };
            match compact_blocks(inner, &group) {
                Ok(meta) => {
                    inner.counters.compactions.fetch_add(1, Ordering::Relaxed);
                    report.compacted.push(meta);
                }
                Err(e) => {
                    inner
                        .counters
                        .compactions_failed
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        if !inner.is_stopping() {
            report.retention_deleted = apply_retention(inner)?;
        }
        Ok(report)
    }
}

/// Writes `[mint, maxt)` of the head as a block and publishes it; `None`
/// when the head has no sample in the range.
fn write_head_block(
    inner: &Arc<DbInner>,
    mint: i64,
    maxt: i64,
) -> Result<Option<BlockMeta>, TsdbError> {
    let started = Instant::now();
    {
        // Under the commit lock: every later commit refuses samples before
        // `maxt`, and every earlier one is visible to the reader below.
        let _commit = inner.lock_wal();
        inner.head.raise_min_valid(maxt);
    }
    let head = &inner.head;
    let reader = head.isolation.reader();
    let mut series = head.all_series();
    series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
    let mut writer = BlockWriter::new(&inner.dir, mint, maxt)?;
    for s in &series {
        let deleted = head.deleted(s.id);
        let data = s
            .lock()
            .block_data(reader.read_id(), mint, maxt - 1, &head.files, &deleted)?;
        match data {
            BlockData::Chunks(chunks) => {
                let chunks: Vec<BlockChunk<'_>> = chunks
                    .iter()
                    .map(|(min_t, max_t, n, bytes)| BlockChunk {
                        min_t: *min_t,
                        max_t: *max_t,
                        num_samples: *n,
                        encoding: crate::block::ENCODING_XOR,
                        data: bytes.as_slice(),
                    })
                    .collect();
                writer.add_series(&s.labels, &chunks)?;
            }
            BlockData::Samples(samples) => {
                if !samples.is_empty() {
                    writer.add_samples(&s.labels, &samples)?;
                }
            }
        }
    }
    drop(reader);
    if writer.num_series() == 0 {
        return Ok(None);
    }
    let meta = writer.finish()?;
    let block = Arc::new(Block::open(&inner.dir.join(&meta.ulid))?);
    inner.swap_blocks(vec![block], &[]);
    tracing::info!(
        block = %meta.ulid,
        min_time = meta.min_time,
        max_time = meta.max_time,
        series = meta.stats.num_series,
        samples = meta.stats.num_samples,
        duration = ?started.elapsed(),
        "head written to a block"
    );
    Ok(Some(meta))
}

/// Truncates head and WAL before `mint` once no querier that saw an older
/// block list is open; `false` if it gave up waiting for one.
fn truncate_head(inner: &Arc<DbInner>, mint: i64) -> Result<bool, TsdbError> {
    let started = Instant::now();
    let generation = inner
        .blocks
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .generation;
    if !inner.wait_for_readers_before(generation, READER_WAIT) {
        tracing::warn!(
            waited = ?READER_WAIT,
            "head truncation postponed: a query older than the newest block is still open"
        );
        inner
            .counters
            .head_truncations_failed
            .fetch_add(1, Ordering::Relaxed);
        return Ok(false);
    }
    let (stats, empty) = inner.head.truncate(mint);
    let removed = {
        let _commit = inner.lock_wal();
        inner.head.remove_empty(empty)
    };
    inner
        .counters
        .head_truncations
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        mint,
        series_removed = removed,
        chunks_removed = stats.chunks_removed,
        chunk_files_removed = stats.chunk_files_removed,
        duration = ?started.elapsed(),
        "head truncated"
    );
    if let Err(e) = checkpoint_wal(inner, mint) {
        inner
            .counters
            .head_truncations_failed
            .fetch_add(1, Ordering::Relaxed);
        return Err(e);
    }
    Ok(true)
}

/// Checkpoints every WAL segment before the current one, keeping the
/// series still in the head and samples at or after `mint`, then deletes
/// those segments and older checkpoints. Commits go on meanwhile: the
/// commit lock is held only to cut a segment and to delete files.
fn checkpoint_wal(inner: &Arc<DbInner>, mint: i64) -> Result<(), TsdbError> {
    let (dir, first, last, options) = {
        let mut guard = inner.lock_wal();
        let Some(wal) = guard.as_mut() else {
            return Err(TsdbError::Closed);
        };
        let (first, _) = wal.segment_range()?;
        let current = wal.cut_segment()?;
        (wal.dir().to_path_buf(), first, current - 1, wal.options())
    };
    if last < first {
        return Ok(());
    }
    let head = &inner.head;
    let stats = crate::wal::write_checkpoint(
        &dir,
        first,
        last,
        |id| head.series(id).is_some(),
        mint,
        options,
    )?;
    {
        let mut guard = inner.lock_wal();
        let Some(wal) = guard.as_mut() else {
            return Err(TsdbError::Closed);
        };
        wal.truncate(last + 1)?;
    }
    crate::wal::remove_checkpoints_before(&dir, last)?;
    inner.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(?stats, "WAL truncated after checkpoint");
    Ok(())
}

/// One series of a compaction's input: the block and the series' id there.
struct Input<'a> {
    block: &'a Block,
    tombstones: Arc<Tombstones>,
    ids: std::vec::IntoIter<u64>,
    next: Option<(u64, Labels, Vec<ChunkMeta>)>,
}

impl Input<'_> {
    fn advance(&mut self) -> Result<(), BlockError> {
        self.next = match self.ids.next() {
            Some(id) => {
                let (labels, chunks) = self.block.series(id)?;
                Some((id, labels, chunks))
            }
            None => None,
        };
        Ok(())
    }
}

/// Merges `parents` into one block of their combined range, publishes it
/// in place of them and deletes them.
fn compact_blocks(inner: &Arc<DbInner>, parents: &[BlockMeta]) -> Result<BlockMeta, TsdbError> {
    let started = Instant::now();
    let all = inner.blocks();
    let blocks: Vec<Arc<Block>> = parents
        .iter()
        .filter_map(|p| all.iter().find(|b| b.meta().ulid == p.ulid).cloned())
        .collect();
    let meta = merge_blocks(&inner.dir, &blocks, None)?;
    let block = Arc::new(Block::open(&inner.dir.join(&meta.ulid))?);
    let removed: Vec<String> = parents.iter().map(|p| p.ulid.clone()).collect();
    inner.swap_blocks(vec![block], &removed);
    for parent in &blocks {
        delete_block_dir(parent.dir())?;
    }
    tracing::info!(
        block = %meta.ulid,
        min_time = meta.min_time,
        max_time = meta.max_time,
        level = meta.compaction.level,
        parents = ?removed,
        series = meta.stats.num_series,
        duration = ?started.elapsed(),
        "blocks compacted"
    );
    Ok(meta)
}

/// Writes the merge of `blocks` (tombstones applied) as one new block in
/// `dir` and returns its metadata; the inputs are left alone. `range`
/// overrides the output range (default: from the first start to the last
/// end).
pub(crate) fn merge_blocks(
    dir: &Path,
    blocks: &[Arc<Block>],
    range: Option<(i64, i64)>,
) -> Result<BlockMeta, TsdbError> {
    let mint = blocks.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
    let maxt = blocks.iter().map(|b| b.meta().max_time).max().unwrap_or(1);
    let (mint, maxt) = range.unwrap_or((mint, maxt));
    let mut writer = BlockWriter::new(dir, mint, maxt)?;
    let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta().clone()).collect();
    writer.set_parents(&metas);
    let total: usize = blocks.iter().map(|b| b.num_series()).sum();
    let mut inputs = Vec::with_capacity(blocks.len());
    for block in blocks {
        let ids = block.select(&[])?;
        let mut input = Input {
            block,
            tombstones: block.tombstones(),
            ids: ids.into_iter(),
            next: None,
        };
        input.advance()?;
        inputs.push(input);
    }
    let mut done = 0usize;
    let mut last_log = Instant::now();
    while let Some(min) = inputs
        .iter()
        .filter_map(|i| i.next.as_ref().map(|n| &n.1))
        .min()
        .cloned()
    {
        // Every input's copy of this series, oldest block first.
        let mut parts: Vec<Part<'_>> = Vec::new();
        for input in &mut inputs {
            if input.next.as_ref().is_some_and(|n| n.1 == min) {
                if let Some((id, _, chunks)) = input.next.take() {
                    parts.push((input.block, chunks, input.tombstones.get(id).to_vec()));
                }
                input.advance()?;
                done += 1;
            }
        }
        write_merged_series(&mut writer, &min, &parts, mint, maxt)?;
        if last_log.elapsed() >= PROGRESS_EVERY {
            last_log = Instant::now();
            tracing::info!(
                series_done = done,
                series_total = total,
                percent = (done * 100 / total.max(1)),
                "compaction in progress"
            );
        }
    }
    Ok(writer.finish()?)
}

/// One input block's copy of a series: its chunks and deleted intervals.
type Part<'a> = (&'a Block, Vec<ChunkMeta>, Vec<(i64, i64)>);

/// Adds one series to a compaction's output: its chunks copied as they are
/// when that is exact (no tombstones, chunks in range, not overlapping),
/// otherwise its samples merged, deduplicated and re-encoded.
fn write_merged_series(
    writer: &mut BlockWriter,
    labels: &Labels,
    parts: &[Part<'_>],
    mint: i64,
    maxt: i64,
) -> Result<(), TsdbError> {
    let mut chunks: Vec<(&Block, ChunkMeta)> = parts
        .iter()
        .flat_map(|(block, chunks, _)| chunks.iter().map(move |c| (*block, *c)))
        .collect();
    chunks.sort_by_key(|(_, c)| c.min_t);
    let copyable = parts.iter().all(|(_, _, deleted)| deleted.is_empty())
        && chunks.windows(2).all(|w| w[0].1.max_t < w[1].1.min_t)
        && chunks
            .iter()
            .all(|(_, c)| c.min_t >= mint && c.max_t < maxt);
    if copyable {
        let mut raw = Vec::with_capacity(chunks.len());
        for (block, c) in &chunks {
            let (encoding, data) = block.chunk(c)?;
            let mut it =
                ChunkIterator::new(encoding, data).map_err(|reason| BlockError::Corrupt {
                    path: block.dir().join("chunks"),
                    reason,
                })?;
            let mut n = 0u32;
            while it.next() {
                n += 1;
            }
            if let Some(reason) = it.err() {
                return Err(BlockError::Corrupt {
                    path: block.dir().join("chunks"),
                    reason,
                }
                .into());
            }
            raw.push(BlockChunk {
                min_t: c.min_t,
                max_t: c.max_t,
                num_samples: n,
                encoding,
                data,
            });
        }
        writer.add_series(labels, &raw)?;
        return Ok(());
    }
    let mut samples: Vec<Sample> = Vec::new();
    for (block, chunks, deleted) in parts {
        for c in chunks {
            let (encoding, data) = block.chunk(c)?;
            let mut it =
                ChunkIterator::new(encoding, data).map_err(|reason| BlockError::Corrupt {
                    path: block.dir().join("chunks"),
                    reason,
                })?;
            while it.next() {
                let (t, v) = it.at();
                if t >= mint && t < maxt && !crate::block::is_deleted(deleted, t) {
                    samples.push(Sample::new(t, v));
                }
            }
            if let Some(reason) = it.err() {
                return Err(BlockError::Corrupt {
                    path: block.dir().join("chunks"),
                    reason,
                }
                .into());
            }
        }
    }
    // Stable: for equal timestamps the oldest block's sample comes first
    // and is the one kept.
    samples.sort_by_key(|s| s.t);
    samples.dedup_by_key(|s| s.t);
    writer.add_samples(labels, &samples)?;
    Ok(())
}

/// Deletes blocks past the retention time or beyond the retention size;
/// returns their ULIDs.
fn apply_retention(inner: &Arc<DbInner>) -> Result<Vec<String>, TsdbError> {
    let blocks = inner.blocks();
    let Some(newest_end) = blocks.iter().map(|b| b.meta().max_time).max() else {
        return Ok(Vec::new());
    };
    let options = &inner.options;
    let mut doomed: Vec<(Arc<Block>, &'static str)> = Vec::new();
    if options.retention_ms > 0 {
        let horizon = newest_end.saturating_sub(options.retention_ms);
        for b in blocks.iter() {
            if b.meta().max_time <= horizon {
                doomed.push((Arc::clone(b), "time"));
            }
        }
    }
    if options.retention_bytes > 0 {
        let mut total = dir_size(&inner.dir.join("wal")) + dir_size(&inner.dir.join("chunks_head"));
        // Newest first: the oldest go once the budget is spent.
        for b in blocks.iter().rev() {
            total += b.size();
            if total > options.retention_bytes && !doomed.iter().any(|(d, _)| Arc::ptr_eq(d, b)) {
                doomed.push((Arc::clone(b), "size"));
            }
        }
    }
    if doomed.is_empty() {
        return Ok(Vec::new());
    }
    let ulids: Vec<String> = doomed.iter().map(|(b, _)| b.meta().ulid.clone()).collect();
    inner.swap_blocks(Vec::new(), &ulids);
    for (block, reason) in &doomed {
        let m = block.meta();
        tracing::info!(
            block = %m.ulid,
            min_time = m.min_time,
            max_time = m.max_time,
            bytes = block.size(),
            reason,
            "deleting block past retention"
        );
        let counter = if *reason == "time" {
            &inner.counters.retention_time
        } else {
            &inner.counters.retention_size
        };
        counter.fetch_add(1, Ordering::Relaxed);
        inner
            .counters
            .blocks_deleted
            .fetch_add(1, Ordering::Relaxed);
        delete_block_dir(block.dir())?;
    }
    Ok(ulids)
}

/// Bytes of the files under `dir` (not following links).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockCompaction, BlockStats};

    fn meta(ulid: &str, min: i64, max: i64) -> BlockMeta {
        BlockMeta {
            ulid: ulid.into(),
            min_time: min,
            max_time: max,
            stats: BlockStats::default(),
            compaction: BlockCompaction {
                level: 1,
                sources: vec![],
                parents: vec![],
            },
            version: 1,
        }
    }

    #[test]
    fn ranges_grow_by_three() {
        assert_eq!(ranges(2, 100), [2, 6, 18, 54]);
        assert_eq!(ranges(2, 2), [2]);
        assert_eq!(ranges(2, 1), [2]);
    }

    #[test]
    fn planning_follows_prometheus() {
        let r = ranges(20, 540);
        // Too few blocks.
        assert_eq!(plan(&[meta("a", 0, 20)], &r), None);
        // Three adjacent 20s fill a 60 range, but the newest is excluded:
        // with a fourth block, the first three are compacted.
        let b = [meta("a", 0, 20), meta("b", 20, 40), meta("c", 40, 60)];
        // Without it, the first two end where the newest begins.
        let got: Vec<String> = plan(&b, &r)
            .expect("plan")
            .into_iter()
            .map(|m| m.ulid)
            .collect();
        assert_eq!(got, ["a", "b"]);
        let four = [
            meta("a", 0, 20),
            meta("b", 20, 40),
            meta("c", 40, 60),
            meta("d", 60, 80),
        ];
        let got: Vec<String> = plan(&four, &r)
            .expect("plan")
            .into_iter()
            .map(|m| m.ulid)
            .collect();
        assert_eq!(got, ["a", "b", "c"]);
        // Two blocks in a range that ends before the newest block.
        let gap = [meta("a", 0, 20), meta("b", 20, 40), meta("d", 60, 80)];
        let got: Vec<String> = plan(&gap, &r)
            .expect("plan")
            .into_iter()
            .map(|m| m.ulid)
            .collect();
        assert_eq!(got, ["a", "b"]);
        // Overlapping blocks go first.
        let overlap = [meta("a", 0, 20), meta("x", 10, 30), meta("b", 40, 60)];
        let got: Vec<String> = plan(&overlap, &r)
            .expect("plan")
            .into_iter()
            .map(|m| m.ulid)
            .collect();
        assert_eq!(got, ["a", "x"]);
        // Nothing to do for a single block per range.
        let spread = [meta("a", 0, 60), meta("b", 60, 120)];
        assert_eq!(plan(&spread, &r), None);
    }
}
