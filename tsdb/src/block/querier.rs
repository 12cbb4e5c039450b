//! Reading a block through the model's [`Querier`]: chunk decoding by
//! encoding byte, series sets, sample iterators with tombstones applied.

use std::collections::BTreeSet;
use std::sync::Arc;

use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::sample::Sample;
use ember_model::storage::{
    Annotations, LabelQueryResult, Querier, SampleIterator, SelectHints, Series, SeriesSet,
    StorageError,
};

use super::{Block, ChunkMeta, ENCODING_XOR, Interval, is_deleted};
use crate::chunkenc::XorIterator;

/// Decodes a chunk of any encoding a block may hold, chosen by its
/// encoding byte. A cursor like [`XorIterator`]: `next`, then `at`.
#[derive(Debug)]
pub enum ChunkIterator<'a> {
    /// Ember's float chunk ([`ENCODING_XOR`]).
    Xor(XorIterator<'a>),
}

impl<'a> ChunkIterator<'a> {
    /// An iterator over `data` in encoding `encoding`.
    ///
    /// # Errors
    /// A message for an unknown encoding byte or a chunk whose header is
    /// damaged.
    pub fn new(encoding: u8, data: &'a [u8]) -> Result<Self, String> {
        match encoding {
            ENCODING_XOR => XorIterator::new(data)
                .map(ChunkIterator::Xor)
                .map_err(|e| e.to_string()),
            // Encoding 2 of the float chunk (chunks.md), written by backfill.
            0x82 => XorIterator::with_encoding(data, crate::chunkenc::Encoding::Xor2)
                .map(ChunkIterator::Xor)
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown chunk encoding {other:#04x}")),
        }
    }

    /// Advances to the next sample.
    #[allow(clippy::should_implement_trait)] // A cursor, like XorIterator.
    pub fn next(&mut self) -> bool {
        match self {
            ChunkIterator::Xor(it) => it.next(),
        }
    }

    /// The current sample.
    pub fn at(&self) -> (i64, f64) {
        match self {
            ChunkIterator::Xor(it) => it.at(),
        }
    }

    /// The decoding error that ended the iteration, if any.
    pub fn err(&self) -> Option<String> {
        match self {
            ChunkIterator::Xor(it) => it.err().map(ToString::to_string),
        }
    }
}

/// The [`Querier`] of one block over `[mint, maxt]`.
#[derive(Debug)]
pub(crate) struct BlockQuerier {
    block: Arc<Block>,
    mint: i64,
    maxt: i64,
}

impl BlockQuerier {
    pub(crate) fn new(block: Arc<Block>, mint: i64, maxt: i64) -> Self {
        Self { block, mint, maxt }
    }

    fn storage_error(e: super::BlockError) -> StorageError {
        StorageError::Corruption(e.to_string())
    }

    /// The series `id` if it has chunks in range (and, with tombstones,
    /// samples left), as a series of this querier.
    pub(crate) fn load(&self, id: u64) -> Result<Option<BlockSeries>, StorageError> {
        let (labels, mut chunks) = self.block.series(id).map_err(Self::storage_error)?;
        chunks.retain(|c| c.max_t >= self.mint && c.min_t <= self.maxt);
        if chunks.is_empty() {
            return Ok(None);
        }
        let deleted = self.block.tombstones().get(id).to_vec();
        let series = BlockSeries {
            block: Arc::clone(&self.block),
            labels,
            chunks,
            deleted,
            mint: self.mint,
            maxt: self.maxt,
        };
        // A chunk reaching past the range may have no sample inside it,
        // and tombstones may hide them all: then the series is not there.
        let straddles = series.chunks.first().is_some_and(|c| c.min_t < self.mint)
            || series.chunks.last().is_some_and(|c| c.max_t > self.maxt);
        if (straddles || !series.deleted.is_empty()) && !series.samples().next() {
            return Ok(None);
        }
        Ok(Some(series))
    }

    /// Ids matching `matchers`, or none when the block misses the range.
    pub(crate) fn ids(&self, matchers: &[Matcher]) -> Result<Vec<u64>, StorageError> {
        if !self.block.meta().overlaps(self.mint, self.maxt) {
            return Ok(Vec::new());
        }
        self.block.select(matchers).map_err(Self::storage_error)
    }
}

impl Querier for BlockQuerier {
    fn select(
        &self,
        _sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet<'_> + '_>, StorageError> {
        // Ids ascend in label order, so the set is always sorted.
        let ids = self.ids(matchers)?;
        Ok(Box::new(BlockSeriesSet {
            querier: self,
            ids: ids.into_iter(),
            remaining: hints.and_then(|h| h.limit).unwrap_or(usize::MAX),
            annotations: Annotations::new(),
            failed: false,
        }))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut values = Vec::new();
        if !self.block.meta().overlaps(self.mint, self.maxt) {
        } else if matchers.is_empty() {
            values = self.block.label_values(name).map_err(Self::storage_error)?;
            values.retain(|v| !v.is_empty());
            values.truncate(limit);
        } else {
            let mut found = BTreeSet::new();
            for id in self.ids(matchers)? {
                let (labels, _) = self.block.series(id).map_err(Self::storage_error)?;
                if let Some(v) = labels.get(name).filter(|v| !v.is_empty()) {
                    found.insert(v.to_owned());
                }
            }
            values.extend(found.into_iter().take(limit));
        }
        Ok(LabelQueryResult {
            values,
            annotations: Annotations::new(),
        })
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut names = Vec::new();
        if !self.block.meta().overlaps(self.mint, self.maxt) {
        } else if matchers.is_empty() {
            names = self.block.label_names().map_err(Self::storage_error)?;
            names.truncate(limit);
        } else {
            let mut found = BTreeSet::new();
            for id in self.ids(matchers)? {
                let (labels, _) = self.block.series(id).map_err(Self::storage_error)?;
                found.extend(labels.names().map(str::to_owned));
            }
            names.extend(found.into_iter().take(limit));
        }
        Ok(LabelQueryResult {
            values: names,
            annotations: Annotations::new(),
        })
    }
}

struct BlockSeriesSet<'q> {
    querier: &'q BlockQuerier,
    ids: std::vec::IntoIter<u64>,
    remaining: usize,
    annotations: Annotations,
    failed: bool,
}

impl<'q> Iterator for BlockSeriesSet<'q> {
    type Item = Result<Box<dyn Series + 'q>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 || self.failed {
            return None;
        }
        for id in self.ids.by_ref() {
            match self.querier.load(id) {
                Ok(Some(series)) => {
                    self.remaining -= 1;
                    return Some(Ok(Box::new(series)));
                }
                Ok(None) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl<'q> SeriesSet<'q> for BlockSeriesSet<'q> {
    fn annotations(&self) -> &Annotations {
        &self.annotations
    }
}

/// A series of a block: its chunks in range, read lazily.
#[derive(Debug)]
pub(crate) struct BlockSeries {
    block: Arc<Block>,
    labels: Labels,
    chunks: Vec<ChunkMeta>,
    deleted: Vec<Interval>,
    mint: i64,
    maxt: i64,
}

impl Series for BlockSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(self.iter())
    }
}

impl BlockSeries {
    pub(crate) fn iter(&self) -> BlockSampleIterator<'_> {
        BlockSampleIterator {
            series: self,
            next_chunk: 0,
            current: None,
            sample: Sample::new(i64::MIN, f64::NAN),
            done: false,
            err: None,
        }
    }
}

/// Samples of a [`BlockSeries`], chunk after chunk.
pub(crate) struct BlockSampleIterator<'a> {
    series: &'a BlockSeries,
    next_chunk: usize,
    current: Option<ChunkIterator<'a>>,
    sample: Sample,
    done: bool,
    err: Option<StorageError>,
}

impl BlockSampleIterator<'_> {
    fn fail(&mut self, message: String) -> bool {
        self.err = Some(StorageError::Corruption(format!(
            "block {}: {message}",
            self.series.block.meta().ulid
        )));
        self.done = true;
        false
    }
}

impl SampleIterator for BlockSampleIterator<'_> {
    fn next(&mut self) -> bool {
        if self.done {
            return false;
        }
        let series = self.series;
        loop {
            if let Some(it) = self.current.as_mut() {
                if it.next() {
                    let (t, v) = it.at();
                    if t < series.mint || is_deleted(&series.deleted, t) {
                        continue;
                    }
                    if t > series.maxt {
                        self.done = true;
                        return false;
                    }
                    self.sample = Sample::new(t, v);
                    return true;
                }
                if let Some(e) = it.err() {
                    return self.fail(e);
                }
                self.current = None;
            }
            let Some(chunk) = series.chunks.get(self.next_chunk) else {
                self.done = true;
                return false;
            };
            self.next_chunk += 1;
            let opened = series
                .block
                .chunk(chunk)
                .map_err(|e| e.to_string())
                .and_then(|(encoding, data)| ChunkIterator::new(encoding, data));
            match opened {
                Ok(it) => self.current = Some(it),
                Err(e) => return self.fail(e),
            }
        }
    }

    fn seek(&mut self, t: i64) -> bool {
        if self.done {
            return false;
        }
        if self.sample.t >= t && self.sample.t != i64::MIN {
            return true;
        }
        // Skip whole chunks that end before `t`.
        if self.current.is_some()
            && self
                .series
                .chunks
                .get(self.next_chunk.wrapping_sub(1))
                .is_some_and(|c| c.max_t < t)
        {
            self.current = None;
        }
        if self.current.is_none() {
            while self
                .series
                .chunks
                .get(self.next_chunk)
                .is_some_and(|c| c.max_t < t)
            {
                self.next_chunk += 1;
            }
        }
        while self.next() {
            if self.sample.t >= t {
                return true;
            }
        }
        false
    }

    fn at(&self) -> Sample {
        self.sample
    }

    fn err(&self) -> Option<&StorageError> {
        self.err.as_ref()
    }
}
