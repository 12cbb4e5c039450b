//! Relabel pipelines with plugin steps.
//!
//! A scrape config's `relabel_configs` and `metric_relabel_configs` are lists
//! of [`RelabelStep`]s: built-in rules and `action: plugin` steps. A
//! [`RelabelPipeline`] groups consecutive rules into one segment, applied per
//! label set by `ember_model::relabel` exactly as without plugins, and runs
//! each plugin step as **one** call with every label set still alive at that
//! point (a whole discovery update, or a whole scrape). A pipeline without
//! plugin steps is never run through here: callers keep the plain rule path
//! ([`RelabelPipeline::rules_only`]).

use ember_config::{RelabelConfig, RelabelStep};
use ember_model::labels::Labels;
use ember_model::relabel;

use super::{PluginManager, PluginUseError};

/// A run of built-in rules, or one plugin call.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Rules(Vec<RelabelConfig>),
    Plugin(String),
}

/// The steps of one relabel list, ready to run over batches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RelabelPipeline {
    segments: Vec<Segment>,
}

impl RelabelPipeline {
    /// Groups `steps` into segments.
    pub fn new(steps: &[RelabelStep]) -> RelabelPipeline {
        let mut segments: Vec<Segment> = Vec::new();
        for step in steps {
            match step {
                RelabelStep::Rule(rule) => match segments.last_mut() {
                    Some(Segment::Rules(rules)) => rules.push(rule.clone()),
                    _ => segments.push(Segment::Rules(vec![rule.clone()])),
                },
                RelabelStep::Plugin(name) => segments.push(Segment::Plugin(name.clone())),
            }
        }
        RelabelPipeline { segments }
    }

    /// The rules, when no step calls a plugin.
    pub fn rules_only(&self) -> Option<&[RelabelConfig]> {
        match self.segments.as_slice() {
            [] => Some(&[]),
            [Segment::Rules(rules)] => Some(rules),
            _ => None,
        }
    }

    /// Whether any step calls a plugin.
    pub fn has_plugins(&self) -> bool {
        self.rules_only().is_none()
    }

    /// The plugins the pipeline calls, in order.
    pub fn plugins(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Plugin(name) => Some(name.as_str()),
            Segment::Rules(_) => None,
        })
    }

    /// Runs every step over `batch`: one entry per input, `None` where a step
    /// dropped the set. Each plugin step is one call with the sets still
    /// alive; a failed call fails the whole batch.
    pub async fn run(
        &self,
        manager: &PluginManager,
        batch: Vec<Labels>,
    ) -> Result<Vec<Option<Labels>>, PluginUseError> {
        let mut sets: Vec<Option<Labels>> = batch.into_iter().map(Some).collect();
        for segment in &self.segments {
            match segment {
                Segment::Rules(rules) => {
                    for set in &mut sets {
                        if let Some(labels) = set {
                            *set = relabel::process_labels(labels, rules);
                        }
                    }
                }
                Segment::Plugin(name) => call_plugin(manager, name, &mut sets).await?,
            }
        }
        Ok(sets)
    }
}

/// One plugin call over the live sets of `sets`, written back in place.
async fn call_plugin(
    manager: &PluginManager,
    name: &str,
    sets: &mut [Option<Labels>],
) -> Result<(), PluginUseError> {
    let live: Vec<usize> = (0..sets.len()).filter(|&i| sets[i].is_some()).collect();
    if live.is_empty() {
        return Ok(());
    }
    let plugin = manager.get(name)?;
    let batch: Vec<ember_plugin_host::Labels> = live
        .iter()
        .filter_map(|&i| sets[i].as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        })
        .collect();
    let answer = manager.timed(&plugin, plugin.relabel(batch)).await?;
    for (&index, relabeled) in live.iter().zip(answer) {
        sets[index] = match relabeled {
            None => None,
            Some(pairs) => Some(Labels::new(pairs).map_err(|error| PluginUseError::Call {
                name: name.to_owned(),
                source: ember_plugin_host::PluginCallError::InvalidOutput(error.to_string()),
            })?),
        };
    }
    Ok(())
}
