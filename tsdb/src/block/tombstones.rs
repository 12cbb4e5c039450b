//! Deleted time ranges per series: the `tombstones` file of a block (layout
//! in `tsdb/docs/format/block.md`) and the in-memory set the head uses too.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use super::BlockError;
use super::enc::{Decoder, put_uvarint, put_varint};

const MAGIC: u32 = 0x0130_BAE1;
const VERSION: u8 = 1;
/// File name inside a block directory.
pub(crate) const FILE_NAME: &str = "tombstones";

/// A closed interval `[mint, maxt]` of deleted time.
pub type Interval = (i64, i64);

/// Deleted intervals per series (a block's series id or a head series id):
/// ascending, merged, never touching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    by_series: BTreeMap<u64, Vec<Interval>>,
}

impl Tombstones {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// Number of series with deleted intervals.
    pub fn len(&self) -> usize {
        self.by_series.len()
    }

    /// Deletes `[mint, maxt]` of `series`, merging with what is deleted.
    pub fn add(&mut self, series: u64, mint: i64, maxt: i64) {
        if mint > maxt {
            return;
        }
        let list = self.by_series.entry(series).or_default();
        list.push((mint, maxt));
        list.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(list.len());
        for &(a, b) in list.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *list = merged;
    }

    /// The deleted intervals of `series`.
    pub fn get(&self, series: u64) -> &[Interval] {
        self.by_series.get(&series).map_or(&[], Vec::as_slice)
    }

    /// Every series with its intervals, ascending by series.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[Interval])> + '_ {
        self.by_series.iter().map(|(&s, v)| (s, v.as_slice()))
    }

    /// Drops the intervals of `series`.
    pub(crate) fn remove(&mut self, series: u64) {
        self.by_series.remove(&series);
    }

    /// Keeps only intervals that reach `mint` or later, clipped to start
    /// there.
    pub(crate) fn truncate_before(&mut self, mint: i64) {
        self.by_series.retain(|_, list| {
            list.retain(|&(_, b)| b >= mint);
            for iv in list.iter_mut() {
                iv.0 = iv.0.max(mint);
            }
            !list.is_empty()
        });
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        buf.extend_from_slice(&MAGIC.to_be_bytes());
        buf.push(VERSION);
        put_uvarint(&mut buf, self.by_series.len() as u64);
        for (&series, list) in &self.by_series {
            put_uvarint(&mut buf, series);
            put_uvarint(&mut buf, list.len() as u64);
            for &(a, b) in list {
                put_varint(&mut buf, a);
                put_uvarint(&mut buf, b.wrapping_sub(a) as u64);
            }
        }
        let crc = crc32c::crc32c(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        buf
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 9 {
            return Err("tombstones file too short".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().unwrap_or([0; 4])) {
            return Err("tombstones CRC mismatch".into());
        }
        let mut d = Decoder::new(body);
        if d.u32() != Some(MAGIC) || d.u8() != Some(VERSION) {
            return Err("bad tombstones header".into());
        }
        let bad = || "tombstones truncated".to_owned();
        let mut out = Tombstones::default();
        let n = d.uvarint().ok_or_else(bad)?;
        for _ in 0..n {
            let series = d.uvarint().ok_or_else(bad)?;
            let k = d.uvarint().ok_or_else(bad)?;
            for _ in 0..k {
                let a = d.varint().ok_or_else(bad)?;
                let span = d.uvarint().ok_or_else(bad)?;
                out.add(series, a, a.wrapping_add(span as i64));
            }
        }
        Ok(out)
    }

    /// Reads `dir/tombstones`; no file means none.
    pub(crate) fn read(dir: &Path) -> Result<Self, BlockError> {
        let path = dir.join(FILE_NAME);
        match fs::read(&path) {
            Ok(bytes) => {
                Self::decode(&bytes).map_err(|reason| BlockError::Corrupt { path, reason })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(BlockError::io(&path, e)),
        }
    }

    /// Replaces `dir/tombstones` atomically (removes it when empty).
    pub(crate) fn write(&self, dir: &Path) -> Result<(), BlockError> {
        let path = dir.join(FILE_NAME);
        if self.is_empty() {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlockError::io(&path, e)),
            }
            return super::sync_dir(dir);
        }
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let mut file = fs::File::create(&tmp).map_err(|e| BlockError::io(&tmp, e))?;
        file.write_all(&self.encode())
            .and_then(|()| file.sync_all())
            .map_err(|e| BlockError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| BlockError::io(&path, e))?;
        super::sync_dir(dir)
    }
}

/// Whether `t` lies in one of `intervals` (ascending).
pub(crate) fn is_deleted(intervals: &[Interval], t: i64) -> bool {
    let i = intervals.partition_point(|&(_, b)| b < t);
    intervals.get(i).is_some_and(|&(a, _)| a <= t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_and_round_trip() {
        let mut t = Tombstones::default();
        t.add(3, 10, 20);
        t.add(3, 21, 30);
        t.add(3, 50, 60);
        t.add(1, -5, 5);
        assert_eq!(t.get(3), &[(10, 30), (50, 60)]);
        assert!(is_deleted(t.get(3), 30));
        assert!(!is_deleted(t.get(3), 31));
        assert!(is_deleted(t.get(1), -5));
        let decoded = Tombstones::decode(&t.encode()).expect("decode");
        assert_eq!(decoded, t);
        let mut bytes = t.encode();
        bytes[6] ^= 1;
        assert!(Tombstones::decode(&bytes).is_err());
        t.truncate_before(55);
        assert_eq!(t.get(3), &[(55, 60)]);
        assert!(t.get(1).is_empty());
    }
}
