//! Backfill: turn an OpenMetrics file into persistent blocks, the engine of
//! `ember tsdb create-blocks-from openmetrics`.
//!
//! The input and the block layout follow `promtool tsdb create-blocks-from
//! openmetrics`: every sample must carry a timestamp (OpenMetrics seconds);
//! blocks cover ranges aligned to the block duration (2 h, or the largest of
//! 2 h, 6 h, 18 h, … that is at most `max_block_duration`); blocks with no
//! samples are not written. Like promtool, at most one block's samples are
//! held in memory: the input is validated once (any parse error aborts before
//! a block is written) and then read once per block range.
//!
//! Differences from promtool, deliberately more forgiving and losing nothing:
//! samples of a series may come in any time order, and a sample repeated
//! with the same timestamp and the same value is stored once (a different
//! value for the same timestamp is an error naming the series and time).
//! Chunks hold up to [`BackfillOptions::samples_per_chunk`] samples (480 by
//! default: two hours at 15 s in one chunk), since blocks are read-only and
//! a chunk's fixed cost is paid once per chunk, and use the float chunk's
//! encoding 2 ([`Encoding::Xor2`], byte `0x82`).
//!
//! ```
//! use ember_tsdb::backfill::{BackfillOptions, create_blocks_from_openmetrics};
//!
//! let input = b"# TYPE up gauge\nup{job=\"a\"} 1 1700000000\nup{job=\"a\"} 0 1700000015.5\n# EOF\n";
//! let dir = tempfile::tempdir()?;
//! let blocks = create_blocks_from_openmetrics(input, dir.path(), &BackfillOptions::default(), |_| {})?;
//! assert_eq!(blocks.len(), 1);
//! assert_eq!(blocks[0].stats.num_samples, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use ember_model::exposition::{Entry, OpenMetricsOptions, OpenMetricsParser, ParseError};
use ember_model::labels::Labels;

use crate::block::{BlockChunk, BlockError, BlockMeta, BlockWriter};
use crate::chunkenc::{Encoding, XorChunk};

/// Prometheus's default (and smallest) block duration, 2 h.
pub const DEFAULT_BLOCK_DURATION_MS: i64 = 2 * 3600 * 1000;

/// Options of [`create_blocks_from_openmetrics`].
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Upper bound for the block duration; the duration used is the largest
    /// of 2 h × 3^k (k < 10) not above it, and 2 h for anything smaller.
    pub max_block_duration_ms: i64,
    /// Most samples per chunk.
    pub samples_per_chunk: usize,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            max_block_duration_ms: DEFAULT_BLOCK_DURATION_MS,
            samples_per_chunk: 480,
        }
    }
}

/// Errors of a backfill. Nothing half-written is left behind: a block is
/// moved into place only when complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// The input is not valid OpenMetrics.
    #[error("{0}")]
    Parse(#[source] ParseError),
    /// A sample without a timestamp.
    #[error("line {line}: sample of {series} has no timestamp; backfill needs one on every sample")]
    MissingTimestamp {
        /// 1-based line.
        line: usize,
        /// The series.
        series: String,
    },
    /// A label set that cannot be a series.
    #[error("line {line}: {reason}")]
    InvalidSeries {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two different values for one series and timestamp.
    #[error("{series}: two different values ({a} and {b}) at timestamp {t} ms")]
    Conflict {
        /// The series.
        series: String,
        /// The timestamp.
        t: i64,
        /// The values.
        a: f64,
        /// The values.
        b: f64,
    },
    /// The input has no samples.
    #[error("no samples found in the input")]
    Empty,
    /// Writing a block failed.
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// What a backfill has done so far, reported after each block.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Blocks written so far.
    pub blocks_done: usize,
    /// Block ranges to look at in total (some may turn out empty).
    pub ranges_total: usize,
    /// Samples written so far.
    pub samples_done: u64,
    /// Samples in the input.
    pub samples_total: u64,
}

/// The block duration promtool would choose for `max`.
pub fn block_duration(max_ms: i64) -> i64 {
    let mut chosen = DEFAULT_BLOCK_DURATION_MS;
    let mut range = DEFAULT_BLOCK_DURATION_MS;
    for _ in 0..10 {
        if range > max_ms {
            break;
        }
        chosen = range;
        range *= 3;
    }
    chosen
}

/// 1-based line number of byte `offset` of `input`.
fn line_of(input: &[u8], offset: usize) -> usize {
    1 + input[..offset.min(input.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn parser(input: &[u8]) -> OpenMetricsParser<'_> {
    OpenMetricsParser::with_options(input, OpenMetricsOptions::prometheus_compatible())
}

/// Calls `f(labels raw bytes, labels, t, v)` for every sample; the first pass
/// (`build_labels`) validates labels too.
fn for_each_sample(
    input: &[u8],
    mut f: impl FnMut(
        &[u8],
        &dyn Fn() -> Result<Labels, BackfillError>,
        i64,
        f64,
    ) -> Result<(), BackfillError>,
) -> Result<(), BackfillError> {
    let mut p = parser(input);
    loop {
        match p.next_entry().map_err(BackfillError::Parse)? {
            Entry::Series(s) => {
                let offset = s.raw.as_ptr() as usize - input.as_ptr() as usize;
                let labels = || {
                    Labels::new(std::iter::once(("__name__", s.name)).chain(s.labels.iter()))
                        .map_err(|e| BackfillError::InvalidSeries {
                            line: line_of(input, offset),
                            reason: e.to_string(),
                        })
                };
                let Some(t) = s.timestamp_ms else {
                    return Err(BackfillError::MissingTimestamp {
                        line: line_of(input, offset),
                        series: String::from_utf8_lossy(s.raw).into_owned(),
                    });
                };
                f(s.raw, &labels, t, s.value)?;
            }
            Entry::EndOfFile => return Ok(()),
            _ => {}
        }
    }
}

/// Encodes one series' sorted samples into chunks.
fn encode(samples: &[(i64, f64)], per_chunk: usize) -> Vec<(i64, i64, u32, Vec<u8>)> {
    samples
        .chunks(per_chunk.clamp(1, usize::from(XorChunk::MAX_SAMPLES)))
        .map(|part| {
            let mut chunk = XorChunk::with_encoding(Encoding::Xor2, part.len() + 16);
            for &(t, v) in part {
                // `part` is within MAX_SAMPLES, so the chunk never fills.
                let _ = chunk.append(t, v);
            }
            (
                part[0].0,
                part[part.len() - 1].0,
                part.len() as u32,
                chunk.into_bytes(),
            )
        })
        .collect()
}

/// Reads OpenMetrics `input` and writes blocks into `out_dir` (created if
/// missing). Returns the metadata of the blocks written, in time order.
/// `progress` is called after each block.
///
/// # Errors
/// [`BackfillError`]; on error, blocks completed before it stay in
/// `out_dir` (each is whole), the one being written is removed.
pub fn create_blocks_from_openmetrics(
    input: &[u8],
    out_dir: &Path,
    options: &BackfillOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Vec<BlockMeta>, BackfillError> {
    // Pass 1: validate everything and find the time range.
    let (mut mint, mut maxt, mut total) = (i64::MAX, i64::MIN, 0u64);
    for_each_sample(input, |_, labels, t, _| {
        labels()?;
        mint = mint.min(t);
        maxt = maxt.max(t);
        total += 1;
        Ok(())
    })?;
    if total == 0 {
        return Err(BackfillError::Empty);
    }
    let duration = block_duration(options.max_block_duration_ms);
    let first = mint.div_euclid(duration) * duration;
    let ranges = ((maxt - first) / duration + 1) as usize;
    let mut metas = Vec::new();
    let mut done = 0u64;
    for r in 0..ranges {
        let start = first + r as i64 * duration;
        let end = start + duration;
        // Pass per block: collect this range's samples by series.
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut series: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
        for_each_sample(input, |raw, labels, t, v| {
            if t < start || t >= end {
                return Ok(());
            }
            let i = match index.get(raw) {
                Some(&i) => i,
                None => {
                    index.insert(raw.to_vec(), series.len());
                    series.push((labels()?, Vec::new()));
                    series.len() - 1
                }
            };
            series[i].1.push((t, v));
            Ok(())
        })?;
        drop(index);
        if series.is_empty() {
            continue;
        }
        // Different spellings of one label set (label order, escapes) are one series.
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let mut writer = BlockWriter::new(out_dir, start, end)?;
        let mut i = 0;
        while i < series.len() {
            let mut j = i + 1;
            while j < series.len() && series[j].0 == series[i].0 {
                j += 1;
            }
            let mut samples: Vec<(i64, f64)> = Vec::new();
            for s in &mut series[i..j] {
                samples.append(&mut s.1);
            }
            samples.sort_by_key(|s| s.0);
            let mut unique: Vec<(i64, f64)> = Vec::with_capacity(samples.len());
            for (t, v) in samples {
                match unique.last() {
                    Some(&(pt, pv)) if pt == t => {
                        if pv.to_bits() != v.to_bits() {
                            return Err(BackfillError::Conflict {
                                series: series[i].0.to_string(),
                                t,
                                a: pv,
                                b: v,
                            });
                        }
                    }
                    _ => unique.push((t, v)),
                }
            }
            let encoded = encode(&unique, options.samples_per_chunk);
            let chunks: Vec<BlockChunk<'_>> = encoded
                .iter()
                .map(|(min_t, max_t, n, data)| BlockChunk {
                    min_t: *min_t,
                    max_t: *max_t,
                    num_samples: *n,
                    encoding: Encoding::Xor2.byte(),
                    data,
                })
                .collect();
            writer.add_series(&series[i].0, &chunks)?;
            done += unique.len() as u64;
            i = j;
        }
        drop(series);
        metas.push(writer.finish()?);
        progress(Progress {
            blocks_done: metas.len(),
            ranges_total: ranges,
            samples_done: done,
            samples_total: total,
        });
    }
    Ok(metas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;

    #[test]
    fn block_durations_match_promtool() {
        let h = 3600 * 1000;
        assert_eq!(block_duration(0), 2 * h);
        assert_eq!(block_duration(2 * h), 2 * h);
        assert_eq!(block_duration(5 * h), 2 * h);
        assert_eq!(block_duration(6 * h), 6 * h);
        assert_eq!(block_duration(24 * h), 18 * h);
        assert_eq!(block_duration(i64::MAX / 4), 2 * h * 3i64.pow(9));
    }

    #[test]
    fn samples_land_in_aligned_blocks_and_read_back() {
        // Two series over 3 h: blocks [0, 2h) and [2h, 4h); the second series
        // is written out of time order and repeats one sample.
        let mut text = String::from("# TYPE a gauge\n");
        for i in 0..720 {
            text.push_str(&format!("a{{x=\"1\"}} {i} {}\n", i * 15));
        }
        text.push_str("# TYPE b gauge\n");
        for i in (0..10).rev() {
            text.push_str(&format!("b 0.{i} {}\n", 3000 + i * 30));
        }
        text.push_str("b 0.3 3090\n# EOF\n");
        let dir = tempfile::tempdir().unwrap();
        let mut calls = 0;
        let metas = create_blocks_from_openmetrics(
            text.as_bytes(),
            dir.path(),
            &BackfillOptions::default(),
            |_| calls += 1,
        )
        .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(metas.len(), 2);
        assert_eq!((metas[0].min_time, metas[0].max_time), (0, 7_200_000));
        assert_eq!(metas[0].stats.num_samples, 480 + 10);
        assert_eq!(metas[1].stats.num_samples, 240);
        let block = Block::open(&dir.path().join(&metas[0].ulid)).unwrap();
        let ids = block
            .select(&[ember_model::matcher::Matcher::equal("__name__", "b")])
            .unwrap();
        let (_, chunks) = block.series(ids[0]).unwrap();
        let (encoding, data) = block.chunk(&chunks[0]).unwrap();
        let encoding = Encoding::from_byte(encoding).expect("a float chunk encoding");
        assert_eq!(encoding, Encoding::Xor2);
        let chunk = XorChunk::from_bytes_with(encoding, data.to_vec()).unwrap();
        let mut it = chunk.iter();
        let mut got = Vec::new();
        while it.next() {
            got.push(it.at());
        }
        assert_eq!(got.len(), 10);
        assert_eq!(got[0], (3_000_000, 0.0));
        assert_eq!(got[9], (3_270_000, 0.9));
    }

    #[test]
    fn bad_input_names_the_line_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_blocks_from_openmetrics(
            b"a 1 1\na 2\n# EOF\n",
            dir.path(),
            &BackfillOptions::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("line 2: "), "{err}");
        let err = create_blocks_from_openmetrics(
            b"a 1 1\na{ 2 3\n# EOF\n",
            dir.path(),
            &BackfillOptions::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("line 2"), "{err}");
        let err = create_blocks_from_openmetrics(
            b"a 1 1\na 2 1\n# EOF\n",
            dir.path(),
            &BackfillOptions::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(err, BackfillError::Conflict { t: 1000, .. }),
            "{err}"
        );
        assert!(matches!(
            create_blocks_from_openmetrics(
                b"# EOF\n",
                dir.path(),
                &BackfillOptions::default(),
                |_| {}
            ),
            Err(BackfillError::Empty)
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
