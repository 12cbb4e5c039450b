//! Checkpoints: the still-needed part of old segments, condensed.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::reader::{Reader, segment_files};
use super::record::{
    MetricType, Record, RecordType, RefMetadata, RefSample, RefSeries, RefTombstone,
    decode_metadata, decode_samples, decode_series, decode_tombstones,
};
use super::segment::{self, CHECKPOINT_PREFIX};
use super::{SyncPolicy, Wal, WalError, WalOptions};

/// What a checkpoint kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The new checkpoint directory.
    pub dir: PathBuf,
    /// Series definitions read and kept.
    pub series_read: usize,
    /// Series definitions kept.
    pub series_kept: usize,
    /// Samples read.
    pub samples_read: usize,
    /// Samples kept.
    pub samples_kept: usize,
    /// Tombstones read.
    pub tombstones_read: usize,
    /// Tombstones kept.
    pub tombstones_kept: usize,
    /// Metadata entries read.
    pub metadata_read: usize,
    /// Metadata entries kept (the latest per kept series).
    pub metadata_kept: usize,
    /// Records of types Ember does not decode, dropped.
    pub unknown_dropped: usize,
}

/// Writes `checkpoint.<to>` from the previous checkpoint and segments
/// `from ..= to`, atomically.
pub(crate) fn write(
    dir: &Path,
    from: u64,
    to: u64,
    keep_series: &dyn Fn(u64) -> bool,
    mint: i64,
    options: WalOptions,
) -> Result<CheckpointStats, WalError> {
    let mut inputs = Vec::new();
    let mut first = from;
    if let Some((index, path)) = segment::list_checkpoints(dir)
        .map_err(|e| WalError::io(dir, e))?
        .pop()
    {
        if index >= to {
            return Err(WalError::InvalidArgument(format!(
                "checkpoint {index} already covers segment {to}"
            )));
        }
        inputs.extend(segment_files(&path, true, |_| true)?);
        first = first.max(index + 1);
    }
    inputs.extend(segment_files(dir, false, |i| (first..=to).contains(&i))?);

    let final_dir = dir.join(segment::checkpoint_name(to));
    let tmp_dir = dir.join(format!("{}.tmp", segment::checkpoint_name(to)));
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| WalError::io(&tmp_dir, e))?;
    }
    let checkpoint_options = WalOptions {
        sync: SyncPolicy::SegmentCut,
        ..options
    };
    let mut out = Wal::open(&tmp_dir, checkpoint_options)?;
    let mut stats = CheckpointStats {
        dir: final_dir.clone(),
        ..CheckpointStats::default()
    };
    let mut reader = Reader::new(inputs);
    let mut encoded = Vec::new();
    let mut samples = Vec::new();
    let mut tombstones = Vec::new();
    let mut latest_metadata: HashMap<u64, (MetricType, String, String)> = HashMap::new();
    while let Some(record) = reader.next_record()? {
        encoded.clear();
        match RecordType::of(record) {
            RecordType::Series => {
                let mut series = Vec::new();
                decode_series(record, &mut series)?;
                stats.series_read += series.len();
                let kept: Vec<_> = series
                    .iter()
                    .filter(|s| keep_series(s.series_ref))
                    .collect();
                stats.series_kept += kept.len();
                let refs: Vec<RefSeries<'_>> = kept
                    .iter()
                    .map(|s| RefSeries {
                        series_ref: s.series_ref,
                        labels: &s.labels,
                    })
                    .collect();
                if !refs.is_empty() {
                    Record::Series(&refs).encode(&mut encoded);
                }
            }
            RecordType::Samples => {
                samples.clear();
                decode_samples(record, &mut samples)?;
                stats.samples_read += samples.len();
                samples.retain(|s: &RefSample| s.t >= mint && keep_series(s.series_ref));
                stats.samples_kept += samples.len();
                if !samples.is_empty() {
                    Record::Samples(&samples).encode(&mut encoded);
                }
            }
            RecordType::Tombstones => {
                tombstones.clear();
                decode_tombstones(record, &mut tombstones)?;
                stats.tombstones_read += tombstones.len();
                tombstones.retain(|s: &RefTombstone| s.maxt >= mint && keep_series(s.series_ref));
                stats.tombstones_kept += tombstones.len();
                if !tombstones.is_empty() {
                    Record::Tombstones(&tombstones).encode(&mut encoded);
                }
            }
            RecordType::Metadata => {
                let mut metadata_in = Vec::new();
                decode_metadata(record, &mut metadata_in)?;
                stats.metadata_read += metadata_in.len();
                for m in &metadata_in {
                    if keep_series(m.series_ref) {
                        latest_metadata.insert(
                            m.series_ref,
                            (m.metric_type, m.unit.to_owned(), m.help.to_owned()),
                        );
                    }
                }
            }
            RecordType::Unknown(_) => stats.unknown_dropped += 1,
        }
        if !encoded.is_empty() {
            out.log_encoded(&encoded)?;
        }
    }
    let mut metadata: Vec<_> = latest_metadata.iter().collect();
    metadata.sort_unstable_by_key(|(series_ref, _)| **series_ref);
    let metadata: Vec<RefMetadata<'_>> = metadata
        .into_iter()
        .map(|(&series_ref, (metric_type, unit, help))| RefMetadata {
            series_ref,
            metric_type: *metric_type,
            unit,
            help,
        })
        .collect();
    stats.metadata_kept = metadata.len();
    if !metadata.is_empty() {
        encoded.clear();
        Record::Metadata(&metadata).encode(&mut encoded);
        out.log_encoded(&encoded)?;
    }
    out.close()?;
    segment::sync_dir(&tmp_dir).map_err(|e| WalError::io(&tmp_dir, e))?;
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| WalError::io(&final_dir, e))?;
    }
    fs::rename(&tmp_dir, &final_dir).map_err(|e| WalError::io(&final_dir, e))?;
    segment::sync_dir(dir).map_err(|e| WalError::io(dir, e))?;
    tracing::info!(
        checkpoint = %final_dir.display(),
        series_kept = stats.series_kept,
        series_read = stats.series_read,
        samples_kept = stats.samples_kept,
        samples_read = stats.samples_read,
        "WAL checkpoint written"
    );
    Ok(stats)
}

/// Deletes checkpoints older than `index`.
pub(crate) fn remove_older(dir: &Path, index: u64) -> Result<(), WalError> {
    let mut removed = false;
    for (older, path) in segment::list_checkpoints(dir).map_err(|e| WalError::io(dir, e))? {
        if older < index {
            fs::remove_dir_all(&path).map_err(|e| WalError::io(&path, e))?;
            removed = true;
        }
    }
    if removed {
        segment::sync_dir(dir).map_err(|e| WalError::io(dir, e))?;
    }
    Ok(())
}

/// Deletes `checkpoint.*.tmp` directories left by an interrupted checkpoint.
pub(crate) fn remove_temporary(dir: &Path) -> Result<(), WalError> {
    for entry in fs::read_dir(dir).map_err(|e| WalError::io(dir, e))? {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(CHECKPOINT_PREFIX) && name.ends_with(".tmp") {
            let path = entry.path();
            tracing::info!(dir = %path.display(), "deleting interrupted WAL checkpoint");
            fs::remove_dir_all(&path).map_err(|e| WalError::io(&path, e))?;
        }
    }
    Ok(())
}
