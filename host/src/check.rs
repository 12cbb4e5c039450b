//! `ember check config FILE...`: validate configuration files offline.
//!
//! Output follows `promtool check config`, so scripts that grep for
//! `SUCCESS`/`FAILED` keep working. The exit code is 0 only if every file
//! is valid.

use std::io::Write;
use std::path::PathBuf;

/// Checks each file, reports on `out`/`err`, and returns whether all passed.
pub fn check_config_files(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let mut all_valid = true;
    for file in files {
        let _ = writeln!(out, "Checking {}", file.display());
        match ember_config::load_file(file) {
            Ok(config) => {
                for warning in &config.warnings {
                    let _ = writeln!(err, "  WARNING: {warning}");
                }
                let _ = writeln!(
                    out,
                    " SUCCESS: {} is valid prometheus config file syntax",
                    file.display()
                );
            }
            Err(error) => {
                all_valid = false;
                let _ = writeln!(err, "  FAILED: {error}");
            }
        }
        let _ = writeln!(out);
    }
    all_valid
}
