//! The `relabeler` world: rewrite or drop label sets, one batch per call.

use crate::{Config, LabelSet, PluginError};

/// A relabel plugin.
///
/// Implement [`relabel_one`](Relabeler::relabel_one) for a per-series rule, or
/// override [`relabel`](Relabeler::relabel) to see the whole batch (for
/// example to deduplicate or to look things up once per batch). Export the
/// type with [`export_relabeler!`](crate::export_relabeler).
///
/// Contract: the host calls `init` once per instance and then `relabel` any
/// number of times, never concurrently on one instance. `relabel` must return
/// exactly one entry per input, in input order; `None` drops that label set.
pub trait Relabeler: Sized + Send + Sync + 'static {
    /// Builds the plugin from its configuration. An
    /// [`PluginError::InvalidConfig`] fails the plugin's load.
    fn init(config: &Config) -> Result<Self, PluginError>;

    /// Relabels a whole batch. The default applies
    /// [`relabel_one`](Relabeler::relabel_one) to each label set.
    fn relabel(&self, batch: Vec<LabelSet>) -> Result<Vec<Option<LabelSet>>, PluginError> {
        Ok(batch
            .into_iter()
            .map(|labels| self.relabel_one(labels))
            .collect())
    }

    /// Relabels one label set: `Some` keeps it (possibly changed), `None`
    /// drops it. The default keeps it unchanged.
    fn relabel_one(&self, labels: LabelSet) -> Option<LabelSet> {
        Some(labels)
    }
}

/// Exports a [`Relabeler`] implementation as the plugin's `relabeler` world.
///
/// Use it once per plugin crate, at the crate root or in any module:
/// `ember_plugin_sdk::export_relabeler!(MyPlugin);`
#[macro_export]
macro_rules! export_relabeler {
    ($plugin:ty) => {
        const _: () = {
            static STATE: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

            struct Export;

            impl $crate::bindings::relabeler::Guest for Export {
                fn init() -> ::std::result::Result<(), $crate::PluginError> {
                    $crate::__private::init(&STATE, <$plugin as $crate::Relabeler>::init)
                }

                fn relabel(
                    batch: ::std::vec::Vec<$crate::LabelSet>,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<::std::option::Option<$crate::LabelSet>>,
                    $crate::PluginError,
                > {
                    $crate::Relabeler::relabel($crate::__private::state(&STATE)?, batch)
                }
            }

            $crate::bindings::relabeler::export_relabeler_world!(
                Export with_types_in $crate::bindings::relabeler
            );
        };
    };
}
