//! `file_sd_configs`: target groups read from JSON and YAML files.
//!
//! The behaviour is Prometheus's `discovery/file`:
//!
//! - the configured patterns are expanded with shell-style globbing (a `*` in
//!   the last path segment) on every refresh, so new files are found;
//! - a refresh reads every matching file and sends all its groups, with source
//!   `"<path>:<index>"` and `__meta_filepath="<path>"` on every group;
//! - a file that no longer matches (deleted, renamed away), or that now holds
//!   fewer groups, gets empty groups for the sources it no longer has, which
//!   removes their targets;
//! - a file that cannot be read or decoded keeps the groups it had: the error
//!   is logged with the file name and counted in
//!   `ember_sd_file_read_errors_total`, and nothing is sent for it;
//! - `ember_sd_file_mtime_seconds{filename}` holds the modification time of
//!   every file as of its last successful read, for alerts on stale files;
//! - refreshes happen at start, whenever a watched directory changes (the
//!   directory of each pattern is watched, which also catches atomic renames
//!   and new files), and every `refresh_interval` in case a notification was
//!   missed or a watch could not be set up.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ember_config::FileSdConfig;
use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use prometheus::{GaugeVec, IntCounter};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::target_list::{self, Format, TargetListError};
use super::{
    Discoverer, DiscovererFuture, DiscovererMetrics, FILEPATH_LABEL, TargetGroup, UpdateSender,
};

/// Discovers targets from the files of one `file_sd_configs` entry.
#[derive(Debug)]
pub struct FileDiscoverer {
    patterns: Vec<PathBuf>,
    refresh_interval: Duration,
    read_errors: IntCounter,
    mtimes: GaugeVec,
    watcher_errors: IntCounter,
}

impl FileDiscoverer {
    /// A discoverer for `config`, counting read errors in `metrics`.
    pub fn new(config: &FileSdConfig, metrics: &DiscovererMetrics) -> Self {
        Self {
            patterns: config.files.clone(),
            refresh_interval: config.refresh_interval,
            read_errors: metrics.file_read_errors.clone(),
            mtimes: metrics.file_mtime_seconds.clone(),
            watcher_errors: metrics.file_watcher_errors.clone(),
        }
    }
}

impl Discoverer for FileDiscoverer {
    fn mechanism(&self) -> &str {
        "file"
    }

    fn run(self: Box<Self>, updates: UpdateSender) -> DiscovererFuture {
        Box::pin(run(*self, updates))
    }
}

async fn run(discoverer: FileDiscoverer, updates: UpdateSender) {
    // The watcher's callback runs on notify's own thread. It only raises a
    // flag: a channel of capacity one whose pending message means "refresh".
    // A full channel already asks for a refresh, so a failed `try_send` loses
    // nothing, and a burst of events costs one refresh.
    let (changed_tx, mut changed_rx) = mpsc::channel::<()>(1);
    let watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) if needs_refresh(&event) => {
                let _ = changed_tx.try_send(());
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "Error watching file"),
        }
    }) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            discoverer.watcher_errors.inc();
            // Prometheus gives up here; re-reading every refresh_interval
            // still finds changes, only later.
            tracing::error!(%error, "Cannot watch files; falling back to re-reading them every refresh_interval");
            None
        }
    };
    let watching = watcher.is_some();
    let mut files = Files::new(&discoverer, watcher);

    let mut ticker = tokio::time::interval(discoverer.refresh_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            // The first tick completes at once: the initial refresh.
            _ = ticker.tick() => {}
            Some(()) = changed_rx.recv(), if watching => {}
            () = updates.closed() => return,
        }
        // Reading files and (re)adding watches is blocking file system work.
        let refreshed = tokio::task::spawn_blocking(move || {
            let update = files.refresh();
            (files, update)
        })
        .await;
        let update;
        (files, update) = match refreshed {
            Ok(result) => result,
            Err(error) => {
                tracing::error!(%error, "File discovery refresh failed");
                return;
            }
        };
        // The first update is the full state even when it is empty; later
        // empty updates would change nothing.
        if (first || !update.is_empty()) && updates.send(update).await.is_err() {
            return;
        }
        first = false;
    }
}

/// Whether a file system event can change what the watched files hold.
/// Like Prometheus, anything but a pure attribute change counts, except that
/// opens and closes (notify's `Access` events, which include our own reads)
/// never do. Events the kernel dropped (`need_rescan`) always count.
fn needs_refresh(event: &notify::Event) -> bool {
    event.need_rescan()
        || !matches!(
            event.kind,
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
        )
}

/// The state of file discovery between refreshes.
struct Files {
    patterns: Vec<PathBuf>,
    /// The directory of each pattern, watched for changes.
    directories: BTreeSet<PathBuf>,
    read_errors: IntCounter,
    mtimes: GaugeVec,
    watcher: Option<RecommendedWatcher>,
    /// Directories whose watch could not be added, so that the failure is
    /// logged once rather than at every refresh.
    unwatched: BTreeSet<PathBuf>,
    /// How many groups each file had at the last refresh; a file that fails
    /// to read keeps its previous count, so its sources are not removed.
    group_counts: BTreeMap<String, usize>,
}

impl Files {
    fn new(discoverer: &FileDiscoverer, watcher: Option<RecommendedWatcher>) -> Self {
        let directories = discoverer
            .patterns
            .iter()
            .map(|pattern| match pattern.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        Self {
            patterns: discoverer.patterns.clone(),
            directories,
            read_errors: discoverer.read_errors.clone(),
            mtimes: discoverer.mtimes.clone(),
            watcher,
            unwatched: BTreeSet::new(),
            group_counts: BTreeMap::new(),
        }
    }

    /// Reads every matching file; returns the groups of every file read and
    /// empty groups for the sources that disappeared.
    fn refresh(&mut self) -> Vec<TargetGroup> {
        let mut update = Vec::new();
        let mut counts = BTreeMap::new();
        for path in self.list_files() {
            let name = path.display().to_string();
            if counts.contains_key(&name) {
                // Matched by two patterns: read once.
                continue;
            }
            match read_file(&path, &name) {
                Ok((groups, mtime)) => {
                    self.mtimes.with_label_values(&[&name]).set(mtime);
                    counts.insert(name, groups.len());
                    update.extend(groups);
                }
                Err(error) => {
                    self.read_errors.inc();
                    tracing::error!(path = %name, %error, "Error reading file");
                    let previous = self.group_counts.get(&name).copied().unwrap_or(0);
                    counts.insert(name, previous);
                }
            }
        }
        for (name, &previous) in &self.group_counts {
            if !counts.contains_key(name) {
                let _ = self.mtimes.remove_label_values(&[name]);
            }
            let now = counts.get(name).copied().unwrap_or(0);
            if now < previous {
                tracing::debug!(file = %name, "File discovery lost target groups");
                update.extend(
                    (now..previous)
                        .map(|index| TargetGroup::empty(target_list::source(name, index))),
                );
            }
        }
        self.group_counts = counts;
        // Watches are (re)added after every refresh, as Prometheus does: a
        // directory that did not exist at start, or was deleted and created
        // again, gets watched once it exists.
        self.watch_directories();
        update
    }

    /// The files matching the patterns, in pattern order, each pattern's
    /// matches sorted by name.
    fn list_files(&self) -> Vec<PathBuf> {
        let options = glob::MatchOptions {
            case_sensitive: true,
            // Go's filepath.Match: `*` never matches `/`, but does match a leading dot.
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let mut files = Vec::new();
        for pattern in &self.patterns {
            let Some(text) = pattern.to_str() else {
                tracing::error!(glob = %pattern.display(), "Error expanding glob: not valid UTF-8");
                continue;
            };
            match glob::glob_with(&collapse_stars(text), options) {
                Ok(paths) => {
                    for entry in paths {
                        match entry {
                            Ok(path) => files.push(path),
                            // An unreadable directory on the way: Go's Glob skips it too.
                            Err(error) => {
                                tracing::debug!(%error, "Skipping path while expanding glob")
                            }
                        }
                    }
                }
                Err(error) => tracing::error!(glob = text, %error, "Error expanding glob"),
            }
        }
        files
    }

    fn watch_directories(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        for directory in &self.directories {
            match watcher.watch(directory, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.unwatched.remove(directory);
                }
                Err(error) => {
                    if self.unwatched.insert(directory.clone()) {
                        tracing::error!(path = %directory.display(), %error, "Error adding file watch");
                    }
                }
            }
        }
    }
}

impl Drop for Files {
    /// A stopped discoverer no longer vouches for its files' times.
    fn drop(&mut self) {
        for name in self.group_counts.keys() {
            let _ = self.mtimes.remove_label_values(&[name]);
        }
    }
}

/// In Go's patterns `**` means the same as `*`; the glob crate reads it as
/// "any number of directories" and rejects it inside a path segment.
fn collapse_stars(pattern: &str) -> String {
    let mut collapsed = String::with_capacity(pattern.len());
    for ch in pattern.chars() {
        if !(ch == '*' && collapsed.ends_with('*')) {
            collapsed.push(ch);
        }
    }
    collapsed
}

/// Why one file could not be turned into target groups.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Decode(#[from] TargetListError),
    #[error("unsupported file extension; expected .json, .yml or .yaml")]
    Extension,
}

/// The groups in the file at `path` (called `name` in sources and labels),
/// and the file's modification time in whole Unix seconds, as Prometheus
/// reports it.
fn read_file(path: &Path, name: &str) -> Result<(Vec<TargetGroup>, f64), FileError> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    let format = match extension.as_deref() {
        Some("json") => Format::Json,
        Some("yml" | "yaml") => Format::Yaml,
        _ => return Err(FileError::Extension),
    };
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mtime = file
        .metadata()?
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs() as f64);
    let groups = target_list::decode(&bytes, format, name, FILEPATH_LABEL)?;
    Ok((groups, mtime))
}

#[cfg(test)]
mod tests;
