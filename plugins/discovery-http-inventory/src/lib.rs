//! An Ember discovery plugin that reads an inventory of hosts from an HTTP
//! endpoint serving JSON.
//!
//! The inventory is a JSON array of hosts, each an address and optional
//! labels:
//!
//! ```json
//! [
//!   {"address": "10.0.0.1:9100", "labels": {"env": "prod", "rack": "r1"}},
//!   {"address": "10.0.0.2", "labels": {"env": "staging"}}
//! ]
//! ```
//!
//! Each refresh GETs `url` and answers one target group (source
//! `inventory:<url>`) with a target per host: `__address__` is the address
//! (with `default_port` appended when it has none), each inventory label
//! becomes `__meta_inventory_label_<name>` (names sanitised to
//! `[a-zA-Z0-9_]`), and `__meta_inventory_url` names the inventory. Use a
//! `labelmap` relabel rule to keep the labels you want. A failing fetch or
//! an invalid document is `unavailable`: the server keeps the previous
//! targets and asks again at the next refresh.
//!
//! Configuration (the plugin's `config:` map):
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `url` | the inventory's `http://` or `https://` URL; its host must be in the plugin's `allowed_hosts` | required |
//! | `default_port` | port for addresses written without one | none: such hosts are skipped with a warning |
//! | `timeout_ms` | bound on the request | 5000 |

use std::collections::BTreeMap;
use std::time::Duration;

use ember_plugin_sdk::http::{Method, Request};
use ember_plugin_sdk::{
    Config, Discoverer, PluginError, TargetGroup, TargetGroupBuilder, export_discoverer, log,
};
use serde::Deserialize;

struct Inventory {
    url: String,
    default_port: Option<u16>,
    timeout: Duration,
}

/// One host of the inventory document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Host {
    address: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

impl Discoverer for Inventory {
    fn init(config: &Config) -> Result<Self, PluginError> {
        let url = config.require("url")?.to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(PluginError::InvalidConfig(format!(
                "url {url:?} must start with http:// or https://"
            )));
        }
        Ok(Inventory {
            url,
            default_port: config.parse("default_port")?,
            timeout: Duration::from_millis(config.parse("timeout_ms")?.unwrap_or(5000)),
        })
    }

    fn refresh(&self) -> Result<Vec<TargetGroup>, PluginError> {
        let body = Request::new(Method::Get, &self.url)
            .header("accept", "application/json")
            .timeout(self.timeout)
            .send()?
            .error_for_status()?
            .body;
        let hosts: Vec<Host> = serde_json::from_slice(&body).map_err(|error| {
            PluginError::Unavailable(format!("inventory at {} is not valid: {error}", self.url))
        })?;
        let mut group = TargetGroupBuilder::new(format!("inventory:{}", self.url))
            .label("__meta_inventory_url", &self.url);
        for host in hosts {
            let Some(address) = self.address(&host.address) else {
                log::warn(&format!(
                    "skipping {:?}: no port, and no default_port is configured",
                    host.address
                ));
                continue;
            };
            let labels = host
                .labels
                .iter()
                .map(|(name, value)| (format!("__meta_inventory_label_{}", sanitise(name)), value));
            group = group.target(address, labels);
        }
        Ok(vec![group.build()])
    }
}

impl Inventory {
    /// The address with a port, or `None` when it has none and no default
    /// is configured. An IPv6 literal must be bracketed to carry a port.
    fn address(&self, address: &str) -> Option<String> {
        let has_port = match address.rsplit_once(':') {
            Some((host, port)) => {
                port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
            }
            None => false,
        };
        if has_port {
            Some(address.to_owned())
        } else {
            self.default_port.map(|port| format!("{address}:{port}"))
        }
    }
}

/// Label names allow `[a-zA-Z0-9_]`; anything else becomes `_`, as
/// Prometheus's own discovery mechanisms do.
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

export_discoverer!(Inventory);
