//! The `remote-storage` world: forward batches of series, optionally read.

use crate::{Config, PluginError, ReadQuery, Series, WriteError};

/// A remote-storage adapter.
///
/// Contract: the host calls `init` once per instance, then `write` for each
/// batch in order (never concurrently on one instance) and `read` for
/// remote-read queries. Export the type with
/// [`export_remote_storage!`](crate::export_remote_storage).
pub trait RemoteStorage: Sized + Send + Sync + 'static {
    /// Builds the plugin from its configuration. An
    /// [`PluginError::InvalidConfig`] fails the plugin's load.
    fn init(config: &Config) -> Result<Self, PluginError>;

    /// Writes one batch: `Ok` acknowledges all of it;
    /// [`WriteError::Retryable`] asks the host to keep and retry it;
    /// [`WriteError::Permanent`] makes the host drop it.
    fn write(&self, batch: Vec<Series>) -> Result<(), WriteError>;

    /// Answers a remote-read query. The default says the plugin cannot read.
    fn read(&self, query: ReadQuery) -> Result<Vec<Series>, PluginError> {
        let _ = query;
        Err(PluginError::Unsupported(
            "this plugin does not answer remote-read queries".to_owned(),
        ))
    }
}

/// Exports a [`RemoteStorage`] implementation as the plugin's
/// `remote-storage` world.
#[macro_export]
macro_rules! export_remote_storage {
    ($plugin:ty) => {
        const _: () = {
            static STATE: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

            struct Export;

            impl $crate::bindings::remote_storage::Guest for Export {
                fn init() -> ::std::result::Result<(), $crate::PluginError> {
                    $crate::__private::init(&STATE, <$plugin as $crate::RemoteStorage>::init)
                }

                fn write(
                    batch: ::std::vec::Vec<$crate::Series>,
                ) -> ::std::result::Result<(), $crate::WriteError> {
                    let state = $crate::__private::state(&STATE).map_err(|error| {
                        $crate::WriteError::Permanent(::std::format!("{error:?}"))
                    })?;
                    $crate::RemoteStorage::write(state, batch)
                }

                fn read(
                    query: $crate::ReadQuery,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Series>, $crate::PluginError>
                {
                    $crate::RemoteStorage::read($crate::__private::state(&STATE)?, query)
                }
            }

            $crate::bindings::remote_storage::export_remote_storage_world!(
                Export with_types_in $crate::bindings::remote_storage
            );
        };
    };
}
