//! The per-target scrape loop: timing, fetch, ingest, report.
//!
//! Each target gets one tokio task. Its scrapes happen at a fixed phase
//! within the interval, derived from a hash of the target, so that targets
//! spread evenly instead of all firing at once after a reload. Parsing and
//! appending run on the blocking pool, so a large scrape never stalls the
//! async workers that serve HTTP and other scrapes.
//!
//! Scrape timestamps that land within [`TIMESTAMP_TOLERANCE_MS`] of the
//! ideal tick are snapped to it (as Prometheus's
//! `--scrape.adjust-timestamps` does): regular timestamps compress to almost
//! nothing in the TSDB.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ember_model::storage::Storage;
use tokio::sync::watch;

use super::fetch::{FetchSettings, fetch};
use super::ingest::{IngestSettings, IngestStats, ScrapeState};
use super::metrics::ScrapeMetrics;
use super::target::Target;
use crate::http_client::HttpClient;

/// How far (ms) a scrape may start from its ideal tick and still be stamped
/// with the tick.
pub const TIMESTAMP_TOLERANCE_MS: i64 = 2;

/// Why a loop is being stopped; decides whether its series end now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Still running.
    Running,
    /// The target disappeared from discovery: mark its series stale.
    TargetGone,
    /// The pool is being reloaded or the server shuts down: the series may
    /// well continue, so no staleness markers.
    Restart,
}

/// Everything a loop needs; shared with its pool.
#[derive(Clone)]
pub struct LoopContext {
    pub target: Arc<Target>,
    pub client: HttpClient,
    pub fetch: Arc<FetchSettings>,
    pub ingest: Arc<IngestSettings>,
    pub storage: Arc<dyn Storage>,
    pub metrics: ScrapeMetrics,
    /// Set for the targets of an exporter plugin: scraped by calling it.
    pub exporter: Option<super::exporter::ExporterSource>,
}

impl std::fmt::Debug for LoopContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopContext")
            .field("target", &self.target.url())
            .finish_non_exhaustive()
    }
}

/// Runs until `stop` changes from [`StopReason::Running`]; returns the
/// state so that a reloaded pool can continue with a warm cache.
pub async fn run(
    context: LoopContext,
    state: Option<ScrapeState>,
    mut stop: watch::Receiver<StopReason>,
) -> ScrapeState {
    let target = context.target.clone();
    let mut state = Some(state.unwrap_or_else(|| ScrapeState::new(target.labels())));
    let interval = target.interval();
    let interval_ms = interval.as_millis().max(1) as i64;

    // Scrape when (time % interval) == (hash % interval): a stable phase
    // per target, spread over the interval.
    let now_ms = unix_ms(SystemTime::now());
    let phase = (target.hash() % interval_ms as u64) as i64;
    let offset_ms = (phase - now_ms.rem_euclid(interval_ms)).rem_euclid(interval_ms);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_millis(offset_ms as u64),
        interval,
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let mut last_ts: Option<i64> = None;
    let reason = loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break *stop.borrow(),
        }
        let started = SystemTime::now();
        let started_instant = Instant::now();
        let mut ts = unix_ms(started);
        if let Some(last) = last_ts {
            let expected = last + interval_ms;
            if (ts - expected).abs() <= TIMESTAMP_TOLERANCE_MS {
                ts = expected;
            }
        }
        // One root span per scrape for trace export (see crate::telemetry),
        // with the fetch and the ingestion as children.
        let span = tracing::info_span!(
            target: crate::telemetry::TRACE_TARGET,
            "scrape",
            scrape.job = target.labels().get("job").unwrap_or(""),
            scrape.target = target.url(),
            otel.status_code = tracing::field::Empty,
            error.message = tracing::field::Empty,
        );
        let fetch_span = tracing::info_span!(
            target: crate::telemetry::TRACE_TARGET,
            parent: &span,
            "scrape.fetch"
        );
        let scrape = async {
            match &context.exporter {
                Some(exporter) => exporter.collect(&target, context.fetch.timeout).await,
                None => fetch(&context.client, target.url(), &context.fetch).await,
            }
        };
        let fetched = tokio::select! {
            fetched = tracing::Instrument::instrument(scrape, fetch_span) => fetched,
            _ = stop.changed() => break *stop.borrow(),
        };
        let fetch_error = fetched.as_ref().err().map(|e| e.to_string());
        if let Ok(ok) = &fetched
            && let Some(reason) = &ok.negotiated.fallback_reason
        {
            tracing::warn!(target = target.url(), %reason, "Using fallback scrape protocol");
        }

        let taken = state
            .take()
            .unwrap_or_else(|| ScrapeState::new(target.labels()));
        let ctx = context.clone();
        let ingest_span = tracing::info_span!(
            target: crate::telemetry::TRACE_TARGET,
            parent: &span,
            "scrape.ingest"
        );
        let outcome = tokio::task::spawn_blocking(move || {
            let _span = ingest_span.enter();
            let mut state = taken;
            let result = ingest_and_report(
                &ctx,
                &mut state,
                fetched.ok(),
                fetch_error,
                ts,
                started_instant,
            );
            (state, result)
        })
        .await;
        let (returned, result) = match outcome {
            Ok(pair) => pair,
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        };
        let error = match result {
            Ok((error, metadata)) => {
                if let Some(metadata) = metadata {
                    target.set_metadata(metadata);
                }
                error
            }
            Err(storage_error) => Some(format!("appending to storage: {storage_error}")),
        };
        state = Some(returned);
        if let Some(error) = &error {
            tracing::debug!(target = target.url(), %error, "Scrape failed");
            span.record("otel.status_code", "ERROR");
            span.record("error.message", error.as_str());
        }
        drop(span);
        target.report(started, started_instant.elapsed(), error.as_deref());
        last_ts = Some(ts);
    };

    let mut state = state.unwrap_or_else(|| ScrapeState::new(target.labels()));
    if reason == StopReason::TargetGone {
        let storage = context.storage.clone();
        let ts = unix_ms(SystemTime::now());
        state = match tokio::task::spawn_blocking(move || {
            let mut app = storage.appender();
            let result = state
                .append_end_of_run(app.as_mut(), ts)
                .and_then(|()| app.commit());
            if let Err(error) = result {
                tracing::warn!(%error, "Could not write staleness markers for a vanished target");
            }
            state
        })
        .await
        {
            Ok(state) => state,
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        };
    }
    state
}

/// Metadata of the scrape when it succeeded.
type Metadata = Option<std::collections::BTreeMap<String, ember_model::metadata::Metadata>>;

/// The blocking half of a scrape: one transaction with the samples (or,
/// after a failure, the staleness markers) and the synthetic series.
/// Returns the scrape's error message, if it failed.
fn ingest_and_report(
    ctx: &LoopContext,
    state: &mut ScrapeState,
    fetched: Option<super::fetch::Fetched>,
    fetch_error: Option<String>,
    ts: i64,
    started: Instant,
) -> Result<(Option<String>, Metadata), ember_model::storage::StorageError> {
    let mut stats = IngestStats::default();
    let mut app = ctx.storage.appender();
    let mut error = fetch_error;
    let mut metadata = None;
    match fetched {
        Some(fetched) => {
            match state.ingest(
                app.as_mut(),
                &fetched.body,
                fetched.negotiated.format,
                ts,
                &ctx.ingest,
                &mut stats,
            ) {
                Ok(()) => metadata = Some(state.take_metadata()),
                Err(ingest_error) => {
                    app.rollback()?;
                    app = ctx.storage.appender();
                    state.append_empty(app.as_mut(), ts);
                    if matches!(ingest_error, super::ingest::IngestError::SampleLimit) {
                        ctx.metrics.exceeded_sample_limit.inc();
                    }
                    error = Some(ingest_error.to_string());
                }
            }
        }
        None => state.append_empty(app.as_mut(), ts),
    }
    ctx.metrics.record(&stats);
    let duration = started.elapsed().as_secs_f64();
    state.append_report(app.as_mut(), ts, error.is_none(), duration, &stats)?;
    app.commit()?;
    Ok((error, metadata))
}

pub(crate) fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
