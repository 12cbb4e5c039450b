//! Checks configuration files the way `promtool check config` does: loads each file
//! (with its `scrape_config_files`), prints warnings, and exits non-zero on the first
//! invalid one.
//!
//! ```text
//! cargo run -p ember-config --example check_config -- prometheus.yml
//! ```

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: check_config <prometheus.yml>...");
        return ExitCode::from(2);
    }
    let mut status = ExitCode::SUCCESS;
    for path in &paths {
        match ember_config::load_file(Path::new(path)) {
            Ok(config) => {
                for warning in &config.warnings {
                    eprintln!("warning: {warning}");
                }
                println!(
                    "{path}: SUCCESS: {} scrape configs, {} rule file patterns, {} plugins",
                    config.scrape_configs.len(),
                    config.rule_files.len(),
                    config.plugins.len()
                );
            }
            Err(error) => {
                eprintln!("{error}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
