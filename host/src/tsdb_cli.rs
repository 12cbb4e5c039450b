//! `ember tsdb …`: offline tools for block directories, after promtool's
//! `tsdb` commands.
//!
//! - `create-blocks-from openmetrics FILE [OUTDIR]`: backfill
//!   ([`ember_tsdb::backfill`]); prints the blocks it wrote like `list`,
//!   progress on stderr while it runs.
//! - `list [DIR]`: one line per block (ULID, time range, duration, samples,
//!   chunks, series, size), `-r` for human-readable times and sizes.
//! - `analyze [DIR] [BLOCK]`: a block's series, chunks, bytes per sample
//!   (index and chunks separately) and label cardinality: the label names
//!   with most values, the label pairs in most series, the metric names with
//!   most series.
//!
//! Errors are reported as one line on stderr with exit code 1; the output
//! formats are stable enough for scripts but meant for people.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ember_model::matcher::Matcher;
use ember_tsdb::backfill::{self, BackfillOptions};
use ember_tsdb::block::{Block, BlockMeta, META_FILE, is_ulid};

/// `ember tsdb` subcommands.
#[derive(Debug, Subcommand)]
pub enum TsdbCommand {
    /// Import samples and write them as blocks.
    #[command(name = "create-blocks-from", subcommand)]
    CreateBlocksFrom(CreateBlocksFrom),
    /// List the blocks of a data directory.
    List(ListArgs),
    /// Analyze a block: size per sample and label cardinality.
    Analyze(AnalyzeArgs),
}

/// Sources for `create-blocks-from`.
#[derive(Debug, Subcommand)]
pub enum CreateBlocksFrom {
    /// Import samples from an OpenMetrics file (every sample with a
    /// timestamp, ending in `# EOF`) and produce blocks.
    Openmetrics(OpenMetricsArgs),
}

/// Arguments of `create-blocks-from openmetrics`.
#[derive(Debug, Args)]
pub struct OpenMetricsArgs {
    /// OpenMetrics file to read samples from.
    #[arg(value_name = "input file")]
    pub input: PathBuf,
    /// Output directory for generated blocks.
    #[arg(value_name = "output directory", default_value = "data/")]
    pub output: PathBuf,
    /// Maximum duration of the created blocks (2h, 6h, 18h, … up to this).
    #[arg(long = "max-block-duration", value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "2h")]
    pub max_block_duration: Duration,
    /// Print human readable values.
    #[arg(short = 'r', long = "human-readable")]
    pub human_readable: bool,
    /// Do not print created blocks.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print human readable values.
    #[arg(short = 'r', long = "human-readable")]
    pub human_readable: bool,
    /// Database path.
    #[arg(value_name = "db path", default_value = "data/")]
    pub dir: PathBuf,
}

/// Arguments of `analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// How many items to show in each list.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Database path.
    #[arg(value_name = "db path", default_value = "data/")]
    pub dir: PathBuf,
    /// Block to analyze (default: the latest block).
    #[arg(value_name = "block id")]
    pub block: Option<String>,
}

/// Runs a `tsdb` subcommand, writing its report to `out` and progress to
/// `err`.
///
/// # Errors
/// Bad input, unreadable or damaged blocks, I/O errors.
pub fn run(command: TsdbCommand, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    match command {
        TsdbCommand::CreateBlocksFrom(CreateBlocksFrom::Openmetrics(args)) => {
            create_blocks(&args, out, err)
        }
        TsdbCommand::List(args) => {
            let blocks = open_blocks(&args.dir)?;
            print_blocks(
                out,
                blocks.iter().map(|b| (b.meta(), b.size())),
                args.human_readable,
            )
        }
        TsdbCommand::Analyze(args) => analyze(&args, out),
    }
}

fn create_blocks(args: &OpenMetricsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let input =
        fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let options = BackfillOptions {
        max_block_duration_ms: i64::try_from(args.max_block_duration.as_millis())
            .unwrap_or(i64::MAX),
        ..BackfillOptions::default()
    };
    let started = Instant::now();
    let _ = writeln!(
        err,
        "Reading {} ({} bytes)",
        args.input.display(),
        input.len()
    );
    let metas = backfill::create_blocks_from_openmetrics(&input, &args.output, &options, |p| {
        let _ = writeln!(
            err,
            "block {} written (range {}/{}): {}/{} samples ({:.0}%), {:.1}s",
            p.blocks_done,
            p.blocks_done,
            p.ranges_total,
            p.samples_done,
            p.samples_total,
            100.0 * p.samples_done as f64 / p.samples_total.max(1) as f64,
            started.elapsed().as_secs_f64()
        );
    })
    .with_context(|| format!("block creation from {}", args.input.display()))?;
    if !args.quiet {
        let mut rows = Vec::new();
        for meta in &metas {
            let size = dir_size(&args.output.join(&meta.ulid));
            rows.push((meta, size));
        }
        print_blocks(out, rows.into_iter(), args.human_readable)?;
    }
    Ok(())
}

/// Opens every complete block under `dir`, ascending by min time.
fn open_blocks(dir: &Path) -> Result<Vec<Block>> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut blocks = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_ulid(name) && path.join(META_FILE).exists() {
            blocks.push(
                Block::open(&path).with_context(|| format!("opening block {}", path.display()))?,
            );
        }
    }
    blocks.sort_by_key(|b| (b.meta().min_time, b.meta().ulid.clone()));
    Ok(blocks)
}

fn dir_size(dir: &Path) -> u64 {
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

fn print_blocks<'a>(
    out: &mut dyn Write,
    blocks: impl Iterator<Item = (&'a BlockMeta, u64)>,
    human: bool,
) -> Result<()> {
    let mut rows = vec![
        [
            "BLOCK ULID",
            "MIN TIME",
            "MAX TIME",
            "DURATION",
            "NUM SAMPLES",
            "NUM CHUNKS",
            "NUM SERIES",
            "SIZE",
        ]
        .map(String::from),
    ];
    for (meta, size) in blocks {
        let span = meta.max_time - meta.min_time;
        rows.push([
            meta.ulid.clone(),
            if human {
                format_time(meta.min_time)
            } else {
                meta.min_time.to_string()
            },
            if human {
                format_time(meta.max_time)
            } else {
                meta.max_time.to_string()
            },
            format_duration(span),
            meta.stats.num_samples.to_string(),
            meta.stats.num_chunks.to_string(),
            meta.stats.num_series.to_string(),
            if human {
                format_bytes(size)
            } else {
                size.to_string()
            },
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `2020-10-30 16:00:00 +0000 UTC`, as promtool prints times.
fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let frac = ms.rem_euclid(1000);
    let frac = if frac == 0 {
        String::new()
    } else {
        format!(".{frac:03}")
    };
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Go's `time.Duration` format: `2h0m0s`, `1m30s`, `1.5s`, `15ms`.
fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => format!("{sign}{secs}"),
        (0, m) => format!("{sign}{m}m{secs}"),
        (h, m) => format!("{sign}{h}h{m}m{secs}"),
    }
}

/// Sizes like promtool's `-r`: `5MiB570KiB556B`.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    let mut left = bytes;
    let mut s = String::new();
    for (unit, size) in UNITS {
        if left >= size {
            s.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if left > 0 || s.is_empty() {
        s.push_str(&format!("{left}B"));
    }
    s
}

fn analyze(args: &AnalyzeArgs, out: &mut dyn Write) -> Result<()> {
    let blocks = open_blocks(&args.dir)?;
    let block = match &args.block {
        Some(id) => blocks
            .into_iter()
            .find(|b| &b.meta().ulid == id)
            .with_context(|| format!("block {id} not found in {}", args.dir.display()))?,
        None => match blocks.into_iter().last() {
            Some(block) => block,
            None => bail!("no blocks found in {}", args.dir.display()),
        },
    };
    block.verify().context("verifying the block's checksums")?;
    let meta = block.meta();
    let index_bytes = fs::metadata(block.dir().join("index")).map_or(0, |m| m.len());
    let chunk_bytes = dir_size(&block.dir().join("chunks"));
    let total = dir_size(block.dir());
    let samples = meta.stats.num_samples.max(1) as f64;

    let names = block.label_names()?;
    let mut name_cardinality: Vec<(usize, String)> = Vec::new();
    let mut pairs: Vec<(usize, String)> = Vec::new();
    let mut metric_names: Vec<(usize, String)> = Vec::new();
    let mut postings_entries = 0usize;
    let mut value_bytes: HashMap<String, usize> = HashMap::new();
    for name in &names {
        let values = block.label_values(name)?;
        name_cardinality.push((values.len(), name.clone()));
        for value in &values {
            let count = block.select(&[Matcher::equal(name, value)])?.len();
            postings_entries += count;
            *value_bytes.entry(name.clone()).or_default() += value.len() * count;
            pairs.push((count, format!("{name}={value}")));
            if name == "__name__" {
                metric_names.push((count, value.clone()));
            }
        }
    }
    let top =
        |list: &mut Vec<(usize, String)>, out: &mut dyn Write, title: &str| -> io::Result<()> {
            list.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            writeln!(out, "{title}")?;
            for (count, name) in list.iter().take(args.limit) {
                writeln!(out, "{count:>8} {name}")?;
            }
            Ok(())
        };

    writeln!(out, "Block ID: {}", meta.ulid)?;
    writeln!(
        out,
        "Duration: {}",
        format_duration(meta.max_time - meta.min_time)
    )?;
    writeln!(out, "Total Series: {}", meta.stats.num_series)?;
    writeln!(out, "Total Chunks: {}", meta.stats.num_chunks)?;
    writeln!(out, "Total Samples: {}", meta.stats.num_samples)?;
    writeln!(
        out,
        "Samples per chunk: {:.1}",
        samples / meta.stats.num_chunks.max(1) as f64
    )?;
    writeln!(
        out,
        "Size: {total} bytes: index {index_bytes}, chunks {chunk_bytes}, other {}",
        total.saturating_sub(index_bytes + chunk_bytes)
    )?;
    writeln!(
        out,
        "Bytes per sample: {:.3} (chunks {:.3}, index {:.3})",
        total as f64 / samples,
        chunk_bytes as f64 / samples,
        index_bytes as f64 / samples
    )?;
    writeln!(
        out,
        "Index bytes per series: {:.1}",
        index_bytes as f64 / meta.stats.num_series.max(1) as f64
    )?;
    writeln!(out, "Label names: {}", names.len())?;
    writeln!(out, "Postings (unique label pairs): {}", pairs.len())?;
    writeln!(
        out,
        "Postings entries (total label pairs): {postings_entries}"
    )?;
    writeln!(out)?;
    let mut by_bytes: Vec<(usize, String)> = value_bytes.into_iter().map(|(n, b)| (b, n)).collect();
    top(
        &mut by_bytes,
        out,
        "Label names most involved in high cardinality (bytes of values × series):",
    )?;
    writeln!(out)?;
    top(&mut name_cardinality, out, "Highest cardinality labels:")?;
    writeln!(out)?;
    top(&mut pairs, out, "Most common label pairs:")?;
    writeln!(out)?;
    top(&mut metric_names, out, "Highest cardinality metric names:")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_promtool() {
        assert_eq!(
            format_time(1_604_073_600_000),
            "2020-10-30 16:00:00 +0000 UTC"
        );
        assert_eq!(format_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(format_duration(7_200_000), "2h0m0s");
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(1), "1ms");
        assert_eq!(format_duration(1_500), "1.5s");
        assert_eq!(
            format_bytes(5 * (1 << 20) + 570 * 1024 + 556),
            "5MiB570KiB556B"
        );
        assert_eq!(format_bytes(0), "0B");
    }
}
