//! A remote-storage plugin for the host's tests: it "stores" series in its
//! instance's memory and answers reads from there.
//!
//! `write` fails with a retryable error (asking for a 250 ms wait) when a
//! series has the label `fail="retry"`, and with a permanent error for
//! `fail="permanent"`; otherwise it keeps the batch. `read` answers equality
//! matchers only (`unsupported` for others) and returns the samples in the
//! query's time range.

use std::sync::Mutex;

use ember_plugin_sdk::{
    Config, MatchOp, PluginError, ReadQuery, RemoteStorage, RetryableError, Series, WriteError,
    export_remote_storage,
};

struct Fixture {
    stored: Mutex<Vec<Series>>,
}

impl RemoteStorage for Fixture {
    fn init(_config: &Config) -> Result<Self, PluginError> {
        Ok(Fixture {
            stored: Mutex::new(Vec::new()),
        })
    }

    fn write(&self, batch: Vec<Series>) -> Result<(), WriteError> {
        for series in &batch {
            match series.labels.iter().find(|label| label.name == "fail") {
                Some(label) if label.value == "retry" => {
                    return Err(WriteError::Retryable(RetryableError {
                        message: "the fixture asks for a retry".to_owned(),
                        retry_after_ms: Some(250),
                    }));
                }
                Some(label) if label.value == "permanent" => {
                    return Err(WriteError::Permanent(
                        "the fixture refuses this batch".to_owned(),
                    ));
                }
                _ => {}
            }
        }
        self.stored
            .lock()
            .map_err(|_| WriteError::Permanent("poisoned".to_owned()))?
            .extend(batch);
        Ok(())
    }

    fn read(&self, query: ReadQuery) -> Result<Vec<Series>, PluginError> {
        if query
            .matchers
            .iter()
            .any(|matcher| matcher.op != MatchOp::Equal)
        {
            return Err(PluginError::Unsupported(
                "only equality matchers".to_owned(),
            ));
        }
        let stored = self
            .stored
            .lock()
            .map_err(|_| PluginError::Internal("poisoned".into()))?;
        Ok(stored
            .iter()
            .filter(|series| {
                query.matchers.iter().all(|matcher| {
                    let value = series
                        .labels
                        .iter()
                        .find(|label| label.name == matcher.name)
                        .map_or("", |label| label.value.as_str());
                    value == matcher.value
                })
            })
            .map(|series| Series {
                labels: series.labels.clone(),
                samples: series
                    .samples
                    .iter()
                    .filter(|s| (query.start_ms..=query.end_ms).contains(&s.timestamp_ms))
                    .copied()
                    .collect(),
            })
            .collect())
    }
}

export_remote_storage!(Fixture);
