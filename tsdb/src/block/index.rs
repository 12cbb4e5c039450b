//! A block's `index` file: writer and memory-mapped reader. Layout in
//! `tsdb/docs/format/block.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};
use memmap2::Mmap;

use super::enc::{Decoder, put_uvarint, put_varint};
use super::{BlockError, ChunkMeta};
use crate::head::postings::{intersect_sorted, subtract_sorted, union_sorted};

const MAGIC: u32 = 0xBAAA_D7E1;
const VERSION: u8 = 1;
const HEADER_LEN: usize = 5;
const TOC_LEN: usize = 5 * 8 + 4;

/// A `Write` that counts bytes and keeps a running CRC32C of a section.
struct Out {
    w: BufWriter<File>,
    pos: u64,
    crc: u32,
    path: PathBuf,
}

impl Out {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BlockError> {
        self.w
            .write_all(bytes)
            .map_err(|e| BlockError::io(&self.path, e))?;
        self.pos += bytes.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        Ok(())
    }

    /// Writes the CRC of everything since the last call and resets it.
    fn write_crc(&mut self) -> Result<(), BlockError> {
        let crc = self.crc;
        self.write(&crc.to_be_bytes())?;
        self.crc = 0;
        Ok(())
    }
}

/// Writes the index of `series` (ascending by labels, unique) to `path`;
/// returns the file's size.
pub(crate) fn write_index(
    path: &Path,
    series: &[(Labels, Vec<ChunkMeta>)],
) -> Result<u64, BlockError> {
    let file = File::create(path).map_err(|e| BlockError::io(path, e))?;
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, file),
        pos: 0,
        crc: 0,
        path: path.to_path_buf(),
    };
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&MAGIC.to_be_bytes());
    header.push(VERSION);
    out.write(&header)?;

    // Symbols.
    let symbols: Vec<&str> = {
        let mut set = BTreeSet::new();
        for (labels, _) in series {
            for (name, value) in labels {
                set.insert(name);
                set.insert(value);
            }
        }
        set.into_iter().collect()
    };
    let symbol_refs: HashMap<&str, u32> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();
    let symbols_offset = out.pos;
    let mut buf = Vec::new();
    put_uvarint(&mut buf, symbols.len() as u64);
    for s in &symbols {
        put_uvarint(&mut buf, s.len() as u64);
        buf.extend_from_slice(s.as_bytes());
    }
    let len = u32::try_from(buf.len())
        .map_err(|_| BlockError::Invalid("symbol table larger than 4 GiB".into()))?;
    out.write(&len.to_be_bytes())?;
    out.crc = 0;
    out.write(&buf)?;
    out.write_crc()?;

    // Series, collecting postings on the way.
    let series_offset = out.pos;
    let mut offsets: Vec<u32> = Vec::with_capacity(series.len());
    let mut postings: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
    let mut body = Vec::new();
    for (id, (labels, chunks)) in series.iter().enumerate() {
        let id = u32::try_from(id)
            .map_err(|_| BlockError::Invalid("more than 2^32 series in a block".into()))?;
        let offset = u32::try_from(out.pos - series_offset)
            .map_err(|_| BlockError::Invalid("series section larger than 4 GiB".into()))?;
        offsets.push(offset);
        body.clear();
        put_uvarint(&mut body, labels.len() as u64);
        for (name, value) in labels {
            let (n, v) = (symbol_refs[name], symbol_refs[value]);
            put_uvarint(&mut body, u64::from(n));
            put_uvarint(&mut body, u64::from(v));
            postings.entry((n, v)).or_default().push(id);
        }
        put_uvarint(&mut body, chunks.len() as u64);
        let mut prev: Option<&ChunkMeta> = None;
        for chunk in chunks {
            match prev {
                None => {
                    put_varint(&mut body, chunk.min_t);
                    put_uvarint(&mut body, chunk.max_t.wrapping_sub(chunk.min_t) as u64);
                    put_uvarint(&mut body, chunk.chunk_ref);
                }
                Some(p) => {
                    put_uvarint(&mut body, chunk.min_t.wrapping_sub(p.max_t) as u64);
                    put_uvarint(&mut body, chunk.max_t.wrapping_sub(chunk.min_t) as u64);
                    put_uvarint(&mut body, chunk.chunk_ref.wrapping_sub(p.chunk_ref));
                }
            }
            prev = Some(chunk);
        }
        let mut len = Vec::with_capacity(3);
        put_uvarint(&mut len, body.len() as u64);
        out.write(&len)?;
        out.crc = 0;
        out.write(&body)?;
        out.write_crc()?;
    }

    // Series offset table.
    let series_table_offset = out.pos;
    out.crc = 0;
    out.write(&(offsets.len() as u32).to_be_bytes())?;
    buf.clear();
    for offset in &offsets {
        buf.extend_from_slice(&offset.to_be_bytes());
    }
    out.write(&buf)?;
    out.write_crc()?;

    // Postings and their offset table.
    let postings_offset = out.pos;
    let mut table = Vec::new();
    put_uvarint(&mut table, postings.len() as u64);
    let mut prev_offset = 0u64;
    out.crc = 0;
    for (&(name, value), ids) in &postings {
        let offset = out.pos - postings_offset;
        put_uvarint(&mut table, u64::from(name));
        put_uvarint(&mut table, u64::from(value));
        put_uvarint(&mut table, offset - prev_offset);
        prev_offset = offset;
        buf.clear();
        put_uvarint(&mut buf, ids.len() as u64);
        let mut prev = 0u32;
        for (i, &id) in ids.iter().enumerate() {
            put_uvarint(&mut buf, u64::from(if i == 0 { id } else { id - prev }));
            prev = id;
        }
        out.write(&buf)?;
    }
    out.write_crc()?;
    let postings_table_offset = out.pos;
    out.write(&table)?;
    out.write_crc()?;

    // TOC.
    let mut toc = Vec::with_capacity(TOC_LEN);
    for offset in [
        symbols_offset,
        series_offset,
        series_table_offset,
        postings_offset,
        postings_table_offset,
    ] {
        toc.extend_from_slice(&offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&toc);
    toc.extend_from_slice(&crc.to_be_bytes());
    out.write(&toc)?;
    let size = out.pos;
    let file = out
        .w
        .into_inner()
        .map_err(|e| BlockError::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| BlockError::io(path, e))?;
    Ok(size)
}

/// The memory-mapped index of a block.
pub(crate) struct IndexReader {
    map: Mmap,
    path: PathBuf,
    /// Byte offset of every symbol's length varint.
    symbols: Vec<u32>,
    series_offset: usize,
    /// The series offset table (4 bytes per series) in `map`.
    series_table: std::ops::Range<usize>,
    postings_offset: usize,
    postings_end: usize,
    /// Label name ref → (value ref, list offset in the postings section),
    /// ascending by value.
    postings_table: BTreeMap<u32, Vec<(u32, u32)>>,
}

impl std::fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("path", &self.path)
            .field("symbols", &self.symbols.len())
            .field("series", &self.num_series())
            .finish_non_exhaustive()
    }
}

impl IndexReader {
    pub(crate) fn open(path: &Path) -> Result<Self, BlockError> {
        let file = File::open(path).map_err(|e| BlockError::io(path, e))?;
        // SAFETY: a complete block's index is never modified; deleting it
        // leaves the mapping valid.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| BlockError::io(path, e))?;
        let corrupt = |reason: &str| BlockError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        if map.len() < HEADER_LEN + TOC_LEN || map[..4] != MAGIC.to_be_bytes() || map[4] != VERSION
        {
            return Err(corrupt("bad index header or file too short"));
        }
        let toc = &map[map.len() - TOC_LEN..];
        if crc32c::crc32c(&toc[..40])
            != u32::from_be_bytes(toc[40..44].try_into().unwrap_or([0; 4]))
        {
            return Err(corrupt("index TOC CRC mismatch"));
        }
        let mut d = Decoder::new(toc);
        let mut offsets = [0usize; 5];
        for o in &mut offsets {
            *o = usize::try_from(d.u64().unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
        }
        let toc_start = map.len() - TOC_LEN;
        let [
            symbols_offset,
            series_offset,
            series_table_offset,
            postings_offset,
            table_offset,
        ] = offsets;
        if !(HEADER_LEN <= symbols_offset
            && symbols_offset <= series_offset
            && series_offset <= series_table_offset
            && series_table_offset <= postings_offset
            && postings_offset <= table_offset
            && table_offset <= toc_start)
        {
            return Err(corrupt("index TOC offsets out of order"));
        }

        // Symbols.
        let mut d = Decoder::new(&map[symbols_offset..series_offset]);
        let len = d.u32().ok_or_else(|| corrupt("symbol table truncated"))? as usize;
        let body = d
            .bytes(len)
            .ok_or_else(|| corrupt("symbol table truncated"))?;
        let crc = d.u32().ok_or_else(|| corrupt("symbol table truncated"))?;
        if crc32c::crc32c(body) != crc {
            return Err(corrupt("symbol table CRC mismatch"));
        }
        let mut sd = Decoder::new(body);
        let count = sd
            .uvarint()
            .ok_or_else(|| corrupt("symbol table truncated"))?;
        let mut symbols = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(body.len()));
        for _ in 0..count {
            let at = symbols_offset + 4 + sd.position();
            let n = sd.uvarint().ok_or_else(|| corrupt("symbol truncated"))?;
            let s = sd
                .bytes(usize::try_from(n).unwrap_or(usize::MAX))
                .ok_or_else(|| corrupt("symbol truncated"))?;
            if std::str::from_utf8(s).is_err() {
                return Err(corrupt("symbol is not UTF-8"));
            }
            symbols.push(u32::try_from(at).map_err(|_| corrupt("symbol table beyond 4 GiB"))?);
        }

        // Series offset table.
        let table = &map[series_table_offset..postings_offset];
        let mut d = Decoder::new(table);
        let n = d.u32().ok_or_else(|| corrupt("series table truncated"))? as usize;
        let entries = n
            .checked_mul(4)
            .filter(|&b| b + 8 <= table.len())
            .ok_or_else(|| corrupt("series table truncated"))?;
        if crc32c::crc32c(&table[..4 + entries])
            != u32::from_be_bytes(table[4 + entries..8 + entries].try_into().unwrap_or([0; 4]))
        {
            return Err(corrupt("series table CRC mismatch"));
        }
        let series_table = series_table_offset + 4..series_table_offset + 4 + entries;

        // Postings offset table.
        let table = &map[table_offset..toc_start];
        if table.len() < 4
            || crc32c::crc32c(&table[..table.len() - 4])
                != u32::from_be_bytes(table[table.len() - 4..].try_into().unwrap_or([0; 4]))
        {
            return Err(corrupt("postings offset table CRC mismatch"));
        }
        let mut d = Decoder::new(&table[..table.len() - 4]);
        let count = d
            .uvarint()
            .ok_or_else(|| corrupt("postings table truncated"))?;
        let mut postings_table: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
        let mut offset = 0u64;
        for _ in 0..count {
            let (Some(name), Some(value), Some(delta)) = (d.uvarint(), d.uvarint(), d.uvarint())
            else {
                return Err(corrupt("postings table truncated"));
            };
            offset += delta;
            let (Ok(name), Ok(value), Ok(off)) = (
                u32::try_from(name),
                u32::try_from(value),
                u32::try_from(offset),
            ) else {
                return Err(corrupt("postings table entry out of range"));
            };
            if name as usize >= symbols.len() || value as usize >= symbols.len() {
                return Err(corrupt("postings table names an unknown symbol"));
            }
            postings_table.entry(name).or_default().push((value, off));
        }
        Ok(Self {
            path: path.to_path_buf(),
            symbols,
            series_offset,
            series_table,
            postings_offset,
            postings_end: table_offset - 4,
            postings_table,
            map,
        })
    }

    pub(crate) fn size(&self) -> u64 {
        self.map.len() as u64
    }

    fn corrupt(&self, reason: String) -> BlockError {
        BlockError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    pub(crate) fn num_series(&self) -> usize {
        self.series_table.len() / 4
    }

    /// The symbol with reference `r`.
    pub(crate) fn symbol(&self, r: u32) -> Result<&str, BlockError> {
        let at = *self
            .symbols
            .get(r as usize)
            .ok_or_else(|| self.corrupt(format!("unknown symbol {r}")))? as usize;
        let mut d = Decoder::new(&self.map[at..]);
        let n = d.uvarint().unwrap_or(0) as usize;
        let bytes = d.bytes(n).unwrap_or(&[]);
        // Checked to be UTF-8 at open.
        std::str::from_utf8(bytes).map_err(|_| self.corrupt("symbol is not UTF-8".into()))
    }

    /// The reference of symbol `s`, if the block has it.
    fn symbol_ref(&self, s: &str) -> Option<u32> {
        let (mut lo, mut hi) = (0usize, self.symbols.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.symbol(mid as u32).ok()?.cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    /// Labels and chunks of series `id`.
    pub(crate) fn series(&self, id: u32) -> Result<(Labels, Vec<ChunkMeta>), BlockError> {
        let entry = self.series_table.start + id as usize * 4;
        if entry + 4 > self.series_table.end {
            return Err(self.corrupt(format!("no series {id}")));
        }
        let offset =
            u32::from_be_bytes(self.map[entry..entry + 4].try_into().unwrap_or([0; 4])) as usize;
        let bad = || self.corrupt(format!("series {id} truncated"));
        let mut d = Decoder::new(
            self.map
                .get(self.series_offset + offset..)
                .ok_or_else(bad)?,
        );
        let len = usize::try_from(d.uvarint().ok_or_else(bad)?).map_err(|_| bad())?;
        let body = d.bytes(len).ok_or_else(bad)?;
        if d.u32().ok_or_else(bad)? != crc32c::crc32c(body) {
            return Err(self.corrupt(format!("series {id} CRC mismatch")));
        }
        let mut d = Decoder::new(body);
        let n = d.uvarint().ok_or_else(bad)?;
        let mut pairs = Vec::with_capacity(n.min(64) as usize);
        for _ in 0..n {
            let name =
                self.symbol(u32::try_from(d.uvarint().ok_or_else(bad)?).map_err(|_| bad())?)?;
            let value =
                self.symbol(u32::try_from(d.uvarint().ok_or_else(bad)?).map_err(|_| bad())?)?;
            pairs.push((name, value));
        }
        let labels = Labels::new(pairs).map_err(|e| self.corrupt(format!("series {id}: {e}")))?;
        let n = d.uvarint().ok_or_else(bad)?;
        let mut chunks = Vec::with_capacity(n.min(1 << 16) as usize);
        let mut prev: Option<ChunkMeta> = None;
        for _ in 0..n {
            let chunk = match prev {
                None => {
                    let min_t = d.varint().ok_or_else(bad)?;
                    let span = d.uvarint().ok_or_else(bad)?;
                    let chunk_ref = d.uvarint().ok_or_else(bad)?;
                    ChunkMeta {
                        min_t,
                        max_t: min_t.wrapping_add(span as i64),
                        chunk_ref,
                    }
                }
                Some(p) => {
                    let min_t = p.max_t.wrapping_add(d.uvarint().ok_or_else(bad)? as i64);
                    let span = d.uvarint().ok_or_else(bad)?;
                    let chunk_ref = p.chunk_ref.wrapping_add(d.uvarint().ok_or_else(bad)?);
                    ChunkMeta {
                        min_t,
                        max_t: min_t.wrapping_add(span as i64),
                        chunk_ref,
                    }
                }
            };
            chunks.push(chunk);
            prev = Some(chunk);
        }
        Ok((labels, chunks))
    }

    /// Label names, ascending.
    pub(crate) fn label_names(&self) -> Result<Vec<String>, BlockError> {
        self.postings_table
            .keys()
            .map(|&r| self.symbol(r).map(str::to_owned))
            .collect()
    }

    /// The values of `name`, ascending.
    pub(crate) fn label_values(&self, name: &str) -> Result<Vec<String>, BlockError> {
        let Some(values) = self
            .symbol_ref(name)
            .and_then(|r| self.postings_table.get(&r))
        else {
            return Ok(Vec::new());
        };
        values
            .iter()
            .map(|&(v, _)| self.symbol(v).map(str::to_owned))
            .collect()
    }

    fn postings_at(&self, offset: u32) -> Result<Vec<u64>, BlockError> {
        let start = self.postings_offset + offset as usize;
        let bad = || self.corrupt(format!("postings list at {offset} truncated"));
        let mut d = Decoder::new(self.map.get(start..self.postings_end).ok_or_else(bad)?);
        let n = d.uvarint().ok_or_else(bad)?;
        let mut ids = Vec::with_capacity(n.min(1 << 20) as usize);
        let mut id = 0u64;
        for i in 0..n {
            let delta = d.uvarint().ok_or_else(bad)?;
            id = if i == 0 { delta } else { id + delta };
            ids.push(id);
        }
        Ok(ids)
    }

    /// Ids of the series that have `name="value"` exactly.
    pub(crate) fn postings(&self, name: &str, value: &str) -> Result<Vec<u64>, BlockError> {
        let (Some(n), Some(v)) = (self.symbol_ref(name), self.symbol_ref(value)) else {
            return Ok(Vec::new());
        };
        let Some(values) = self.postings_table.get(&n) else {
            return Ok(Vec::new());
        };
        match values.binary_search_by_key(&v, |&(v, _)| v) {
            Ok(i) => self.postings_at(values[i].1),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Union of the lists of `name`'s values for which `keep` holds.
    fn union_where(
        &self,
        name: &str,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<Vec<u64>, BlockError> {
        let Some(values) = self
            .symbol_ref(name)
            .and_then(|r| self.postings_table.get(&r))
        else {
            return Ok(Vec::new());
        };
        let mut lists = Vec::new();
        for &(v, offset) in values {
            if keep(self.symbol(v)?) {
                lists.push(self.postings_at(offset)?);
            }
        }
        let refs: Vec<&[u64]> = lists.iter().map(Vec::as_slice).collect();
        Ok(union_sorted(&refs))
    }

    /// Union of the lists of the values in `set`.
    fn union_of(&self, name: &str, set: &[String]) -> Result<Vec<u64>, BlockError> {
        let mut lists = Vec::new();
        for value in set {
            lists.push(self.postings(name, value)?);
        }
        let refs: Vec<&[u64]> = lists.iter().map(Vec::as_slice).collect();
        Ok(union_sorted(&refs))
    }

    fn values_matching(&self, m: &Matcher) -> Result<Vec<u64>, BlockError> {
        match m.op() {
            MatchOp::Equal => self.postings(m.name(), m.value()),
            MatchOp::Regex if m.set_matches().is_some() => {
                self.union_of(m.name(), m.set_matches().unwrap_or_default())
            }
            MatchOp::Regex if m.prefixes().is_some() => {
                let prefixes = m.prefixes().unwrap_or_default();
                self.union_where(m.name(), |v| {
                    prefixes.iter().any(|p| v.starts_with(p.as_str())) && m.matches(v)
                })
            }
            _ => self.union_where(m.name(), |v| m.matches(v)),
        }
    }

    fn values_not_matching(&self, m: &Matcher) -> Result<Vec<u64>, BlockError> {
        match m.op() {
            MatchOp::NotEqual => self.postings(m.name(), m.value()),
            MatchOp::NotRegex if m.set_matches().is_some() => {
                self.union_of(m.name(), m.set_matches().unwrap_or_default())
            }
            _ => self.union_where(m.name(), |v| !m.matches(v)),
        }
    }

    /// Ids (ascending, so in label order) of the series matching every
    /// matcher; the same set algebra as the head's postings.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Result<Vec<u64>, BlockError> {
        let mut intersect = Vec::new();
        let mut subtract = Vec::new();
        for m in matchers {
            if m.op() == MatchOp::Regex && m.value() == ".*" {
                continue;
            }
            if m.matches_empty() {
                subtract.push(self.values_not_matching(m)?);
            } else {
                let ids = self.values_matching(m)?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                intersect.push(ids);
            }
        }
        let mut result = if intersect.is_empty() {
            (0..self.num_series() as u64).collect()
        } else {
            intersect.sort_by_key(Vec::len);
            let mut lists = intersect.into_iter();
            let first = lists.next().unwrap_or_default();
            lists.fold(first, |acc, list| intersect_sorted(&acc, &list))
        };
        for list in subtract {
            if result.is_empty() {
                break;
            }
            result = subtract_sorted(&result, &list);
        }
        Ok(result)
    }

    /// Checks the CRC of the postings section (queries do not).
    pub(crate) fn verify_postings(&self) -> Result<(), BlockError> {
        let body = &self.map[self.postings_offset..self.postings_end];
        let crc = &self.map[self.postings_end..self.postings_end + 4];
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().unwrap_or([0; 4])) {
            return Err(self.corrupt("postings CRC mismatch".into()));
        }
        Ok(())
    }
}
