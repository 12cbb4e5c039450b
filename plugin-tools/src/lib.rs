//! Plugin author tooling: the library behind `ember plugin`.
//!
//! Three jobs, one module each:
//!
//! - [`scaffold`]: `ember plugin new` writes a plugin project for a
//!   [`Kind`] and a [`Language`] that builds as it is;
//! - [`build`]: `ember plugin build` compiles a project with the toolchain
//!   route that works on this machine (rustup's wasm32 target or Debian's
//!   rustc-web for Rust, componentize-py, componentize-js, clang with
//!   bindings from `wit-bindgen`'s C generator) and turns core modules into
//!   components in-process with `wit-component`;
//! - [`inspect`]: `ember plugin inspect` reads a component (or a core
//!   module carrying its component type) and reports its kind, contract
//!   version, imports (the capabilities it will ask for), exports, size and
//!   SHA-256.
//!
//! [`cli`] holds the command-line surface shared by `ember plugin` and the
//! stand-alone `ember-plugin` binary (which `scripts/build-plugins.sh`
//! uses, so plugins build without the server).
//!
//! The plugin contract itself (`wit/` at the repository root) is compiled
//! into this crate ([`wit::FILES`]), so a scaffolded project carries the
//! exact contract version of the `ember` that made it.
//!
//! # Example
//!
//! ```no_run
//! use ember_plugin_tools::{Kind, Language, build, inspect, scaffold};
//!
//! # fn main() -> Result<(), ember_plugin_tools::ToolError> {
//! let dir = std::path::Path::new("my-exporter");
//! scaffold::new_project(dir, &scaffold::Options::new("my-exporter", Kind::Exporter, Language::Rust))?;
//! let built = build::build(dir, &build::Options::default())?;
//! let report = inspect::inspect_file(&built.component)?;
//! assert_eq!(report.kind, Some(Kind::Exporter));
//! # Ok(())
//! # }
//! ```

pub mod build;
mod cbindings;
pub mod cli;
mod error;
pub mod inspect;
pub mod manifest;
pub mod scaffold;
pub mod wit;

pub use error::ToolError;
pub use manifest::{Kind, Language, Manifest};
