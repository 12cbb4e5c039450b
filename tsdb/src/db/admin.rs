//! Deletion through tombstones, cleaning them, and snapshots — what the
//! admin API offers.
//!
//! - [`Db::delete`] marks `[mint, maxt]` of the matching series deleted:
//!   in each overlapping block's `tombstones` file, and for the head in a
//!   WAL tombstones record (so replay and checkpoints keep it) plus the
//!   head's in-memory tombstones. Queries hide deleted samples at once;
//!   blocks cut from the head and compactions leave them out.
//! - [`Db::clean_tombstones`] rewrites every block that has tombstones
//!   without the deleted samples.
//! - [`Db::snapshot`] hard-links every block into a new directory and,
//!   unless told not to, writes the head there as one more block.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use ember_model::matcher::Matcher;

use super::compact::{delete_block_dir, merge_blocks};
use super::{Db, TsdbError};
use crate::block::{Block, BlockChunk, BlockWriter, ENCODING_XOR, META_FILE, sync_dir};
use crate::head::series::BlockData;
use crate::wal::{Record, RefTombstone};

impl Db {
    /// Deletes the samples in `[mint, maxt]` (ms, inclusive) of every
    /// series matching `matchers`: in each overlapping block's tombstones
    /// file, and for the head in a WAL tombstones record plus the head's
    /// in-memory tombstones. Queries hide the samples at once; head cuts
    /// and compactions leave them out.
    ///
    /// # Errors
    /// [`TsdbError::Closed`], WAL and block I/O errors.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<(), TsdbError> {
        let inner = &self.inner;
        let _maintenance = inner
            .maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if mint > maxt {
            return Ok(());
        }
        for block in inner.blocks().iter() {
            let meta = block.meta();
            if !meta.overlaps(mint, maxt) {
                continue;
            }
            let ids = block.select(matchers)?;
            if ids.is_empty() {
                continue;
            }
            let mut tombstones = (*block.tombstones()).clone();
            for id in &ids {
                tombstones.add(*id, mint.max(meta.min_time), maxt.min(meta.max_time - 1));
            }
            block.set_tombstones(tombstones)?;
            tracing::info!(block = %meta.ulid, series = ids.len(), mint, maxt, "tombstones added to block");
        }
        let head = &inner.head;
        let mut guard = inner.lock_wal();
        let wal = guard.as_mut().ok_or(TsdbError::Closed)?;
        let ids = head.postings().select(matchers);
        let records: Vec<RefTombstone> = ids
            .iter()
            .map(|&series_ref| RefTombstone {
                series_ref,
                mint,
                maxt,
            })
            .collect();
        if !records.is_empty() {
            wal.log(&[Record::Tombstones(&records)])?;
            for id in &ids {
                head.add_tombstone(*id, mint, maxt);
            }
            tracing::info!(
                series = ids.len(),
                mint,
                maxt,
                "tombstones added to the head"
            );
        }
        Ok(())
    }

    /// Rewrites every block with tombstones without the deleted samples
    /// (a block left empty is just deleted). Returns how many blocks were
    /// rewritten.
    ///
    /// # Errors
    /// [`TsdbError::Closed`] and block I/O errors.
    pub fn clean_tombstones(&self) -> Result<usize, TsdbError> {
        let inner = &self.inner;
        let _maintenance = inner
            .maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if inner.is_closed() {
            return Err(TsdbError::Closed);
        }
        let mut rewritten = 0;
        for block in inner.blocks().iter() {
            if block.tombstones().is_empty() {
                continue;
            }
            let meta = block.meta();
            let new = merge_blocks(
                &inner.dir,
                std::slice::from_ref(block),
                Some((meta.min_time, meta.max_time)),
            )?;
            let new_dir = inner.dir.join(&new.ulid);
            let add = if new.stats.num_series == 0 {
                delete_block_dir(&new_dir)?;
                Vec::new()
            } else {
                vec![Arc::new(Block::open(&new_dir)?)]
            };
            inner.swap_blocks(add, std::slice::from_ref(&meta.ulid));
            delete_block_dir(block.dir())?;
            tracing::info!(old = %meta.ulid, new = %new.ulid, "block rewritten without its tombstones");
            rewritten += 1;
        }
        Ok(rewritten)
    }

    /// Writes a snapshot under `<dir>/snapshots/<name>` and returns its
    /// name (`<UTC time>-<16 hex digits>`, as Prometheus names them).
    ///
    /// # Errors
    /// As [`Db::snapshot_to`].
    pub fn snapshot(&self, with_head: bool) -> Result<String, TsdbError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ulid = crate::block::new_ulid();
        let name = format!(
            "{}-{}",
            format_utc(now.as_secs()),
            ulid[10..].to_ascii_lowercase()
        );
        let dest = self.inner.dir.join("snapshots").join(&name);
        self.snapshot_to(&dest, with_head)?;
        Ok(name)
    }

    /// Hard-links every block into `dest` (created), and with `with_head`
    /// writes the head's data there as one more block. The snapshot is a
    /// data directory of its own: a database opened on it sees the data.
    ///
    /// # Errors
    /// [`TsdbError::Closed`], I/O and block errors.
    pub fn snapshot_to(&self, dest: &Path, with_head: bool) -> Result<(), TsdbError> {
        let inner = &self.inner;
        let _maintenance = inner
            .maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if inner.is_closed() {
            return Err(TsdbError::Closed);
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TsdbError::Io { path, source }
        };
        fs::create_dir_all(dest).map_err(io(dest))?;
        for block in inner.blocks().iter() {
            let to = dest.join(&block.meta().ulid);
            link_tree(block.dir(), &to)?;
        }
        if with_head {
            let head = &inner.head;
            let (mint, maxt) = (head.min_t(), head.max_t());
            if mint != i64::MAX && maxt != i64::MIN {
                let reader = head.isolation.reader();
                let mut series = head.all_series();
                series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
                let mut writer = BlockWriter::new(dest, mint, maxt.saturating_add(1))?;
                for s in &series {
                    let deleted = head.deleted(s.id);
                    let data =
                        s.lock()
                            .block_data(reader.read_id(), mint, maxt, &head.files, &deleted)?;
                    match data {
                        BlockData::Chunks(chunks) => {
                            let chunks: Vec<BlockChunk<'_>> = chunks
                                .iter()
                                .map(|(min_t, max_t, n, bytes)| BlockChunk {
                                    min_t: *min_t,
                                    max_t: *max_t,
                                    num_samples: *n,
                                    encoding: ENCODING_XOR,
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
                writer.finish()?;
            }
        }
        sync_dir(dest)?;
        tracing::info!(dir = %dest.display(), with_head, "TSDB snapshot written");
        Ok(())
    }
}

/// Recreates the directory tree `from` at `to` with hard links.
fn link_tree(from: &Path, to: &Path) -> Result<(), TsdbError> {
    let io = |path: PathBuf| move |source| TsdbError::Io { path, source };
    fs::create_dir_all(to).map_err(io(to.to_path_buf()))?;
    for entry in fs::read_dir(from).map_err(io(from.to_path_buf()))? {
        let entry = entry.map_err(io(from.to_path_buf()))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            link_tree(&path, &target)?;
        } else if entry.file_name() != META_FILE || !target.exists() {
            fs::hard_link(&path, &target).map_err(io(target.clone()))?;
        }
    }
    sync_dir(to)?;
    Ok(())
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the epoch (UTC).
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_format() {
        assert_eq!(super::format_utc(0), "19700101T000000Z");
        assert_eq!(super::format_utc(1_732_536_000), "20241125T120000Z");
    }
}
