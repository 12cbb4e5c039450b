//! `ember plugin build`: compile a plugin project and make it a component.
//!
//! | language | route |
//! | --- | --- |
//! | Rust | `cargo build --release --target wasm32-unknown-unknown` with rustup's target if installed, else Debian's `rustc-web` with `-Zbuild-std`; the core module is componentized in-process |
//! | Python | `componentize-py` (from `EMBER_COMPONENTIZE_PY`, the project's `.venv`, or `PATH`) |
//! | JavaScript | the componentize-js API under `node` (from the project's `node_modules` or `EMBER_COMPONENTIZE_JS_DIR`) |
//! | C | bindings from `wit-bindgen`'s C generator (in-process), `clang --target=wasm32-wasi` with wasi-libc, then componentized in-process with the preview-1 reactor adapter |
//!
//! Nothing here downloads anything: a missing tool is an error that says
//! how to install it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::manifest::{Language, Manifest};
use crate::{ToolError, cbindings};

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where `<name>.wasm` goes; default `<project>/target/`.
    pub out_dir: Option<PathBuf>,
    /// Where intermediate files go (cargo's target directory for Rust);
    /// default `<project>/target/`.
    pub target_dir: Option<PathBuf>,
    /// The `componentize-py` program to use before looking at
    /// `EMBER_COMPONENTIZE_PY`, the project's `.venv` and `PATH`.
    pub componentize_py: Option<PathBuf>,
    /// A directory whose `node_modules` has componentize-js, to use when the
    /// project's own `node_modules` has none (before
    /// `EMBER_COMPONENTIZE_JS_DIR`).
    pub componentize_js_dir: Option<PathBuf>,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The plugin's name.
    pub name: String,
    /// The component file.
    pub component: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The language and route used, for the operator (`rust (rustup)`).
    pub route: String,
    /// Wall time of the whole build.
    pub elapsed: Duration,
}

/// Builds the project in `dir` into a component.
pub fn build(dir: &Path, options: &Options) -> Result<Built, ToolError> {
    let started = Instant::now();
    // Build steps run in other working directories; absolute paths keep
    // every path the user gave meaning the same thing.
    let dir = &std::path::absolute(dir).map_err(ToolError::io(dir))?;
    let manifest = Manifest::load(dir)?;
    let absolute = |path: &PathBuf| std::path::absolute(path).map_err(ToolError::io(path));
    let target_dir = match &options.target_dir {
        Some(path) => absolute(path)?,
        None => dir.join("target"),
    };
    let out_dir = match &options.out_dir {
        Some(path) => absolute(path)?,
        None => target_dir.clone(),
    };
    for d in [&target_dir, &out_dir] {
        std::fs::create_dir_all(d).map_err(ToolError::io(d))?;
    }
    let component = out_dir.join(format!("{}.wasm", manifest.name));
    let route = match manifest.language {
        Language::Rust => build_rust(dir, &manifest, &target_dir, &component)?,
        Language::Python => build_python(dir, &manifest, options, &component)?,
        Language::Js => build_js(dir, &manifest, options, &component)?,
        Language::C => build_c(dir, &manifest, &target_dir, &component)?,
    };
    let size = std::fs::metadata(&component)
        .map_err(ToolError::io(&component))?
        .len();
    Ok(Built {
        name: manifest.name,
        component,
        size,
        route,
        elapsed: started.elapsed(),
    })
}

/// Turns a core module carrying `component-type` custom sections into a
/// component, exactly as the server does when it loads one; a component is
/// returned unchanged. Modules that import WASI preview 1 (C with
/// wasi-libc) get the reactor adapter; others leave it out.
pub fn componentize(bytes: &[u8], path: &Path) -> Result<Vec<u8>, ToolError> {
    if is_component(bytes) {
        return Ok(bytes.to_vec());
    }
    wit_component::ComponentEncoder::default()
        .module(bytes)
        .and_then(|encoder| {
            encoder.adapter(
                "wasi_snapshot_preview1",
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .map(|encoder| encoder.validate(true))
        .and_then(|encoder| encoder.encode())
        .map_err(|error| ToolError::Componentize {
            path: path.to_owned(),
            message: format!("{error:#}"),
        })
}

/// Whether `bytes` start with a component's preamble (version 0x0d, layer 1).
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [0x0d, 0, 1, 0]
}

fn componentize_file(core: &Path, component: &Path) -> Result<(), ToolError> {
    let bytes = std::fs::read(core).map_err(ToolError::io(core))?;
    let out = componentize(&bytes, core)?;
    std::fs::write(component, out).map_err(ToolError::io(component))
}

/// Runs a build step with its output passed through to ours.
fn run(mut command: Command, step: &str) -> Result<(), ToolError> {
    let status = command.status().map_err(|error| ToolError::StepFailed {
        step: step.to_owned(),
        status: error.to_string(),
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(ToolError::StepFailed {
            step: step.to_owned(),
            status: status.to_string(),
        })
    }
}

/// The first of `candidates` that exists, or the program found on `PATH`.
fn find_program(candidates: &[PathBuf], program: &str) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(program))
                    .find(|path| path.is_file())
            })
        })
}

/// How Rust reaches wasm32 on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RustRoute {
    /// rustup's `wasm32-unknown-unknown` target is installed.
    Rustup,
    /// Debian's rustc-web with the standard library's source and wasm-ld.
    Debian,
}

fn rust_route() -> Result<RustRoute, ToolError> {
    let rustup_has_target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.trim() == "wasm32-unknown-unknown")
        })
        .unwrap_or(false);
    if rustup_has_target {
        return Ok(RustRoute::Rustup);
    }
    let debian = Path::new("/usr/bin/rustc").is_file()
        && Path::new("/usr/lib/rustlib/src/rust/library").is_dir()
        && find_program(&[], "wasm-ld").is_some();
    if debian {
        return Ok(RustRoute::Debian);
    }
    Err(ToolError::MissingTool {
        tool: "a wasm32 Rust toolchain".to_owned(),
        language: "Rust",
        hint: "`rustup target add wasm32-unknown-unknown`, or on Debian \
               `apt-get install rustc-web cargo-web rust-web-src lld`"
            .to_owned(),
    })
}

fn build_rust(
    dir: &Path,
    manifest: &Manifest,
    target_dir: &Path,
    component: &Path,
) -> Result<String, ToolError> {
    let route = rust_route()?;
    let mut command;
    match route {
        RustRoute::Rustup => {
            command = Command::new("cargo");
        }
        RustRoute::Debian => {
            command = Command::new("/usr/bin/cargo");
            command
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env("RUSTFLAGS", "-C linker=wasm-ld");
        }
    }
    command
        .current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        // A build started from inside another cargo (a test) must not
        // inherit that build's compiler settings.
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if route == RustRoute::Debian {
        command.arg("-Zbuild-std=std,panic_abort");
    }
    run(command, "cargo build")?;
    let core = target_dir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", manifest.name.replace('-', "_")));
    componentize_file(&core, component)?;
    Ok(format!(
        "rust ({})",
        match route {
            RustRoute::Rustup => "rustup wasm32-unknown-unknown",
            RustRoute::Debian => "Debian rustc-web, -Zbuild-std",
        }
    ))
}

fn kind_of(manifest: &Manifest) -> Result<&'static str, ToolError> {
    manifest
        .kind
        .map(|kind| kind.world())
        .ok_or_else(|| ToolError::Usage(format!("{}: no kind in the manifest", manifest.name)))
}

fn build_python(
    dir: &Path,
    manifest: &Manifest,
    options: &Options,
    component: &Path,
) -> Result<String, ToolError> {
    let world = kind_of(manifest)?;
    let mut candidates: Vec<PathBuf> = options.componentize_py.iter().cloned().collect();
    if let Some(path) = std::env::var_os("EMBER_COMPONENTIZE_PY") {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(dir.join(".venv/bin/componentize-py"));
    let tool = find_program(&candidates, "componentize-py").ok_or_else(|| ToolError::MissingTool {
        tool: "componentize-py".to_owned(),
        language: "Python",
        hint: format!(
            "`python3 -m venv {0}/.venv && {0}/.venv/bin/pip install 'componentize-py==0.25.*'`, \
             or set EMBER_COMPONENTIZE_PY",
            dir.display()
        ),
    })?;
    let source = manifest.source_path(dir);
    let module = source
        .file_stem()
        .and_then(|stem| stem.to_str())
        .ok_or_else(|| ToolError::Usage(format!("{}: not a Python file", source.display())))?
        .to_owned();
    let module_dir = source.parent().unwrap_or(dir).to_owned();
    let mut command = Command::new(&tool);
    command
        .current_dir(dir)
        .arg("-d")
        .arg(manifest.wit_dir(dir))
        .args(["-w", world, "componentize", "-p"])
        .arg(&module_dir)
        .arg(&module)
        .arg("-o")
        .arg(component);
    run(command, "componentize-py")?;
    Ok(format!("python (componentize-py at {})", tool.display()))
}

/// The componentize-js driver: reads its arguments from the environment so
/// that paths need no quoting, and writes the component.
const JS_DRIVER: &str = r#"
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";
const env = process.env;
const { component } = await componentize({
  sourcePath: env.EMBER_JS_SOURCE,
  witPath: env.EMBER_JS_WIT,
  worldName: env.EMBER_JS_WORLD,
  disableFeatures: env.EMBER_JS_DISABLE ? env.EMBER_JS_DISABLE.split(",") : [],
});
await writeFile(env.EMBER_JS_OUT, component);
"#;

fn build_js(
    dir: &Path,
    manifest: &Manifest,
    options: &Options,
    component: &Path,
) -> Result<String, ToolError> {
    let world = kind_of(manifest)?;
    let node = find_program(&[], "node").ok_or_else(|| ToolError::MissingTool {
        tool: "node".to_owned(),
        language: "JavaScript",
        hint: "install Node.js 18 or newer (Debian: `apt-get install nodejs npm`)".to_owned(),
    })?;
    let package = "node_modules/@bytecodealliance/componentize-js";
    let mut module_dirs = vec![dir.to_owned()];
    module_dirs.extend(options.componentize_js_dir.iter().cloned());
    if let Some(extra) = std::env::var_os("EMBER_COMPONENTIZE_JS_DIR") {
        module_dirs.push(PathBuf::from(extra));
    }
    let modules = module_dirs
        .into_iter()
        .find(|candidate| candidate.join(package).is_dir())
        .ok_or_else(|| ToolError::MissingTool {
            tool: "@bytecodealliance/componentize-js".to_owned(),
            language: "JavaScript",
            hint: format!(
                "`npm install --prefix {} @bytecodealliance/componentize-js@0.23.0`, or set \
                 EMBER_COMPONENTIZE_JS_DIR to a directory whose node_modules has it",
                dir.display()
            ),
        })?;
    let absolute = |path: PathBuf| -> Result<OsString, ToolError> {
        std::path::absolute(&path)
            .map(PathBuf::into_os_string)
            .map_err(ToolError::io(path))
    };
    let mut command = Command::new(node);
    command
        // Module resolution for `-e` starts at the working directory.
        .current_dir(&modules)
        .args(["--input-type=module", "-e", JS_DRIVER])
        .env("EMBER_JS_SOURCE", absolute(manifest.source_path(dir))?)
        .env("EMBER_JS_WIT", absolute(manifest.wit_dir(dir))?)
        .env("EMBER_JS_WORLD", world)
        .env("EMBER_JS_OUT", absolute(component.to_owned())?);
    run(command, "componentize-js")?;
    Ok(format!(
        "js (componentize-js from {})",
        modules.join("node_modules").display()
    ))
}

fn build_c(
    dir: &Path,
    manifest: &Manifest,
    target_dir: &Path,
    component: &Path,
) -> Result<String, ToolError> {
    let world = kind_of(manifest)?;
    let clang = find_program(&[], "clang").ok_or_else(|| ToolError::MissingTool {
        tool: "clang".to_owned(),
        language: "C",
        hint: "on Debian `apt-get install clang lld wasi-libc libclang-rt-dev-wasm32`".to_owned(),
    })?;
    let gen_dir = target_dir.join("gen");
    let generated = cbindings::generate(&manifest.wit_dir(dir), world, &gen_dir)?;
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(ToolError::io(dir))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "c"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        return Err(ToolError::Usage(format!("{}: no .c files", dir.display())));
    }
    let core = target_dir.join(format!("{}.core.wasm", manifest.name));
    let mut command = Command::new(&clang);
    command
        .current_dir(dir)
        .args([
            "--target=wasm32-wasi",
            "--sysroot=/usr",
            "-O2",
            "-mexec-model=reactor",
            "-Wall",
            "-Wl,--strip-debug",
        ])
        .arg("-I")
        .arg(&gen_dir)
        .arg("-o")
        .arg(&core)
        .args(&sources);
    for name in &generated {
        if name.ends_with(".c") || name.ends_with(".o") {
            command.arg(gen_dir.join(name));
        }
    }
    run(command, "clang")?;
    componentize_file(&core, component)?;
    Ok(format!(
        "c ({} + wit-bindgen-c, wasi-libc)",
        clang.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_told_from_modules() {
        assert!(is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm\x01\0\0\0"));
        assert!(!is_component(b"\0asm"));
    }

    #[test]
    fn a_module_without_a_component_type_is_refused_with_its_path() {
        // A module importing `m.f`, which no WIT world describes.
        let module = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x02\x07\x01\x01m\x01f\0\0";
        let error = componentize(module, Path::new("x.wasm")).unwrap_err();
        assert!(
            error.to_string().starts_with("componentizing x.wasm"),
            "{error}"
        );
    }
}
