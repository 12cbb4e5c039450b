//! Helpers shared by discovery's tests: waiting with deadlines instead of
//! sleeping, so that tests are fast when things work and fail clearly when
//! they do not.

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Discoverer, DiscovererMetrics, TargetGroup};

/// How long a test waits for something that should happen promptly.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Fresh mechanism metrics in a registry of their own.
pub(crate) fn metrics() -> DiscovererMetrics {
    DiscovererMetrics::register(&prometheus::Registry::new()).expect("fresh registry")
}

/// Runs `discoverer` on a task; returns its update channel. The task ends
/// when the receiver is dropped.
pub(crate) fn start(discoverer: impl Discoverer) -> mpsc::Receiver<Vec<TargetGroup>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(Box::new(discoverer).run(tx));
    rx
}

/// The next update, or a panic naming `what` after [`PATIENCE`].
pub(crate) async fn next_update(
    rx: &mut mpsc::Receiver<Vec<TargetGroup>>,
    what: &str,
) -> Vec<TargetGroup> {
    match tokio::time::timeout(PATIENCE, rx.recv()).await {
        Ok(Some(update)) => update,
        Ok(None) => panic!("discoverer stopped while waiting for {what}"),
        Err(_) => panic!("no update within {PATIENCE:?} while waiting for {what}"),
    }
}

/// The first update for which `accept` holds, skipping others (such as a
/// refresh that ran before a write was complete); panics naming `what` if
/// none arrives within [`PATIENCE`].
pub(crate) async fn update_where(
    rx: &mut mpsc::Receiver<Vec<TargetGroup>>,
    what: &str,
    mut accept: impl FnMut(&[TargetGroup]) -> bool,
) -> Vec<TargetGroup> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(update)) if accept(&update) => return update,
            Ok(Some(_)) => {}
            Ok(None) => panic!("discoverer stopped while waiting for {what}"),
            Err(_) => panic!("no matching update within {PATIENCE:?} while waiting for {what}"),
        }
    }
}

/// Waits until `condition` holds, polling; panics naming `what` after [`PATIENCE`].
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Replaces `path`'s content atomically (write a temporary file, rename it),
/// the way configuration management tools write target files.
pub(crate) fn write_atomically(path: &Path, content: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, content).expect("write temporary file");
    std::fs::rename(&temporary, path).expect("rename into place");
}

/// The addresses of `group`'s targets.
pub(crate) fn addresses(group: &TargetGroup) -> Vec<&str> {
    group
        .targets
        .iter()
        .filter_map(|target| target.get(super::ADDRESS_LABEL).map(String::as_str))
        .collect()
}
