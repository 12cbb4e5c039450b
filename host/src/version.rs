//! What this build is: version, git revision and branch, build date, compiler.

/// The facts `ember --version`, `/metrics` (`ember_build_info`) and the
/// build-info API report about this binary.
#[derive(Debug, Clone, Copy)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub branch: &'static str,
    pub build_date: &'static str,
    pub rust_version: &'static str,
}

/// This binary's build information, fixed at compile time by `build.rs`.
pub const BUILD_INFO: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    revision: env!("EMBER_GIT_REVISION"),
    branch: env!("EMBER_GIT_BRANCH"),
    build_date: env!("EMBER_BUILD_DATE"),
    rust_version: env!("EMBER_RUSTC_VERSION"),
};

impl BuildInfo {
    /// The multi-line text `ember --version` prints, laid out like Prometheus's.
    pub fn long_version(&self) -> String {
        format!(
            "ember, version {} (branch: {}, revision: {})\n  build date:       {}\n  rust version:     {}\n  platform:         {}/{}",
            self.version,
            self.branch,
            self.revision,
            self.build_date,
            self.rust_version,
            std::env::consts::OS,
            std::env::consts::ARCH,
        )
    }
}
