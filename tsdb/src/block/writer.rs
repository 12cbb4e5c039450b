//! [`BlockWriter`]: writes one block into `<parent>/<ulid>` atomically.

use std::fs;
use std::path::{Path, PathBuf};

use ember_model::labels::Labels;
use ember_model::sample::Sample;

use super::chunks::{ChunkWriter, MAX_SEGMENT_SIZE};
use super::{
    BlockCompaction, BlockDesc, BlockError, BlockMeta, BlockStats, ChunkMeta, ENCODING_XOR,
    META_FILE, TMP_CREATION_SUFFIX, index, new_ulid, sync_dir,
};
use crate::chunkenc::XorChunk;

/// Samples per chunk when the writer encodes samples itself.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// One encoded chunk handed to [`BlockWriter::add_series`].
#[derive(Debug, Clone, Copy)]
pub struct BlockChunk<'a> {
    /// Timestamp of the first sample.
    pub min_t: i64,
    /// Timestamp of the last sample.
    pub max_t: i64,
    /// Samples in the chunk (for the block's statistics).
    pub num_samples: u32,
    /// The encoding byte ([`super::ENCODING_XOR`] for
    /// [`XorChunk`] bytes).
    pub encoding: u8,
    /// The encoded chunk.
    pub data: &'a [u8],
}

/// Writes a block of the range `[mint, maxt)`.
///
/// # Contract
/// - Series may be added in any order (ascending label order gives the
///   best read locality); each label set at most once, never empty.
/// - A series' chunks are ascending and do not overlap, and every sample
///   lies in `[mint, maxt)`.
/// - Chunk bytes go to the chunk files as they are added; labels and chunk
///   metadata (about 24 bytes per chunk) are held until
///   [`finish`](Self::finish) writes the index.
/// - Everything is written under `<parent>/<ulid>.tmp-for-creation` and
///   renamed to `<parent>/<ulid>` only by `finish`, after every file and
///   `meta.json` (last) are fsynced. Dropping the writer without `finish`
///   deletes the temporary directory.
#[derive(Debug)]
pub struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    ulid: String,
    mint: i64,
    maxt: i64,
    chunks: Option<ChunkWriter>,
    series: Vec<(Labels, Vec<ChunkMeta>)>,
    stats: BlockStats,
    compaction: BlockCompaction,
    finished: bool,
}

impl BlockWriter {
    /// Starts a block of `[mint, maxt)` under `parent_dir` (created if
    /// missing).
    ///
    /// # Errors
    /// [`BlockError::Invalid`] when `mint >= maxt`; I/O errors.
    pub fn new(parent_dir: &Path, mint: i64, maxt: i64) -> Result<Self, BlockError> {
        if mint >= maxt {
            return Err(BlockError::Invalid(format!(
                "block range [{mint}, {maxt}) is empty"
            )));
        }
        let ulid = new_ulid();
        let tmp = parent_dir.join(format!("{ulid}{TMP_CREATION_SUFFIX}"));
        fs::create_dir_all(&tmp).map_err(|e| BlockError::io(&tmp, e))?;
        let chunks = ChunkWriter::new(&tmp.join("chunks"), MAX_SEGMENT_SIZE)?;
        Ok(Self {
            parent: parent_dir.to_path_buf(),
            tmp,
            compaction: BlockCompaction {
                level: 1,
                sources: vec![ulid.clone()],
                parents: Vec::new(),
            },
            ulid,
            mint,
            maxt,
            chunks: Some(chunks),
            series: Vec::new(),
            stats: BlockStats::default(),
            finished: false,
        })
    }

    /// Marks the block as the compaction of `parents` (level and sources
    /// follow from them).
    #[allow(dead_code)] // Used by compaction.
    pub(crate) fn set_parents(&mut self, parents: &[BlockMeta]) {
        let mut sources: Vec<String> = parents
            .iter()
            .flat_map(|p| p.compaction.sources.iter().cloned())
            .collect();
        sources.sort();
        sources.dedup();
        self.compaction = BlockCompaction {
            level: parents
                .iter()
                .map(|p| p.compaction.level)
                .max()
                .unwrap_or(0)
                + 1,
            sources,
            parents: parents
                .iter()
                .map(BlockMeta::desc)
                .collect::<Vec<BlockDesc>>(),
        };
    }

    /// The ULID the block will have.
    pub fn ulid(&self) -> &str {
        &self.ulid
    }

    /// Adds a series with its encoded chunks. A series without chunks is
    /// skipped.
    ///
    /// # Errors
    /// [`BlockError::Invalid`] for empty labels, chunks out of order,
    /// overlapping or outside the block's range; I/O errors.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[BlockChunk<'_>],
    ) -> Result<(), BlockError> {
        if chunks.is_empty() {
            return Ok(());
        }
        if labels.is_empty() {
            return Err(BlockError::Invalid("series with no labels".into()));
        }
        let mut prev_max: Option<i64> = None;
        for c in chunks {
            if c.min_t > c.max_t || c.min_t < self.mint || c.max_t >= self.maxt {
                return Err(BlockError::Invalid(format!(
                    "{labels}: chunk [{}, {}] outside block range [{}, {})",
                    c.min_t, c.max_t, self.mint, self.maxt
                )));
            }
            if prev_max.is_some_and(|p| c.min_t <= p) {
                return Err(BlockError::Invalid(format!(
                    "{labels}: chunks overlap or are out of order at {}",
                    c.min_t
                )));
            }
            prev_max = Some(c.max_t);
        }
        let Some(writer) = self.chunks.as_mut() else {
            return Err(BlockError::Invalid("writer already finished".into()));
        };
        let mut metas = Vec::with_capacity(chunks.len());
        for c in chunks {
            let chunk_ref = writer.write(c.encoding, c.data)?;
            metas.push(ChunkMeta {
                min_t: c.min_t,
                max_t: c.max_t,
                chunk_ref,
            });
            self.stats.num_samples += u64::from(c.num_samples);
        }
        self.stats.num_chunks += metas.len() as u64;
        self.series.push((labels.clone(), metas));
        Ok(())
    }

    /// Adds a series from samples (ascending timestamps), encoding them in
    /// Ember's float chunks of [`SAMPLES_PER_CHUNK`] samples.
    ///
    /// # Errors
    /// As [`add_series`](Self::add_series), and [`BlockError::Invalid`]
    /// for timestamps that are not strictly ascending.
    pub fn add_samples(&mut self, labels: &Labels, samples: &[Sample]) -> Result<(), BlockError> {
        if samples.windows(2).any(|w| w[1].t <= w[0].t) {
            return Err(BlockError::Invalid(format!(
                "{labels}: sample timestamps are not strictly ascending"
            )));
        }
        let encoded: Vec<(i64, i64, u32, Vec<u8>)> = samples
            .chunks(SAMPLES_PER_CHUNK)
            .map(|part| {
                let mut chunk = XorChunk::with_capacity(part.len() * 2 + 16);
                for s in part {
                    // At most SAMPLES_PER_CHUNK samples: never full.
                    let _ = chunk.append(s.t, s.v);
                }
                (
                    part[0].t,
                    part[part.len() - 1].t,
                    part.len() as u32,
                    chunk.into_bytes(),
                )
            })
            .collect();
        let chunks: Vec<BlockChunk<'_>> = encoded
            .iter()
            .map(|(min_t, max_t, n, data)| BlockChunk {
                min_t: *min_t,
                max_t: *max_t,
                num_samples: *n,
                encoding: ENCODING_XOR,
                data,
            })
            .collect();
        self.add_series(labels, &chunks)
    }

    /// Number of series added so far.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Writes the index and `meta.json`, fsyncs, and renames the block
    /// into place; returns its metadata. The block is then at
    /// `<parent>/<meta.ulid>`.
    ///
    /// # Errors
    /// [`BlockError::Invalid`] for a label set added twice; I/O errors (the
    /// temporary directory is removed).
    pub fn finish(mut self) -> Result<BlockMeta, BlockError> {
        let result = self.finish_inner();
        if result.is_ok() {
            self.finished = true;
        }
        result
    }

    fn finish_inner(&mut self) -> Result<BlockMeta, BlockError> {
        if let Some(chunks) = self.chunks.take() {
            chunks.finish()?;
        }
        let mut series = std::mem::take(&mut self.series);
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = series.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(BlockError::Invalid(format!(
                "series {} added twice",
                w[0].0
            )));
        }
        self.stats.num_series = series.len() as u64;
        index::write_index(&self.tmp.join("index"), &series)?;
        drop(series);
        let meta = BlockMeta {
            ulid: self.ulid.clone(),
            min_time: self.mint,
            max_time: self.maxt,
            stats: self.stats.clone(),
            compaction: self.compaction.clone(),
            version: 1,
        };
        write_meta(&self.tmp, &meta)?;
        sync_dir(&self.tmp)?;
        let dest = self.parent.join(&self.ulid);
        fs::rename(&self.tmp, &dest).map_err(|e| BlockError::io(&dest, e))?;
        sync_dir(&self.parent)?;
        Ok(meta)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.finished
            && self.tmp.exists()
            && let Err(error) = fs::remove_dir_all(&self.tmp)
        {
            tracing::warn!(%error, dir = %self.tmp.display(), "removing an unfinished block failed");
        }
    }
}

/// Writes `dir/meta.json` through a temporary file.
pub(crate) fn write_meta(dir: &Path, meta: &BlockMeta) -> Result<(), BlockError> {
    use std::io::Write;
    let tmp = dir.join(format!("{META_FILE}.tmp"));
    let path = dir.join(META_FILE);
    let json = serde_json::to_vec_pretty(meta).map_err(|source| BlockError::Meta {
        path: path.clone(),
        source,
    })?;
    let mut file = fs::File::create(&tmp).map_err(|e| BlockError::io(&tmp, e))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| BlockError::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| BlockError::io(&path, e))
}
