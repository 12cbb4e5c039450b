//! The on-disk cache of compiled components.
//!
//! Compiling a component takes from tens of milliseconds (a small Rust
//! plugin) to over ten seconds (a Python or JavaScript one); loading a
//! compiled artifact takes well under a millisecond to a few tens. So each
//! plugin is compiled once per content and engine, and the artifact is kept
//! as `<cache dir>/<sha256 of the plugin file>-<engine fingerprint>.cwasm`.
//! The fingerprint hashes wasmtime's
//! [`Engine::precompile_compatibility_hash`] (wasmtime version, compiler,
//! target and every setting that changes generated code) together with this
//! crate's version, whose componentization step is part of the artifact.
//!
//! Files are written to a temporary name and renamed into place, so a reader
//! never sees half an artifact, and concurrent loads of the same plugin at
//! worst both compile it.
//!
//! # Trust
//!
//! Loading an artifact is `unsafe` in wasmtime ([`Component::deserialize_file`]):
//! the file is native code that runs as-is, and wasmtime can check only its
//! header (version and configuration), not its contents. The cache directory
//! must therefore be as trusted as the `ember` binary itself: owned by the
//! server's user and writable by nobody else. The server creates it inside its
//! data directory, which it already owns and locks. A corrupt or incompatible
//! file is detected by wasmtime's header check, deleted and rebuilt.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled artifacts live, and the fingerprint of the engine that
/// made them.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_fingerprint: String,
}

/// Hex digest of a byte string.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// A `Hasher` that feeds SHA-256, so that the fingerprint of the engine is
/// stable across builds (std's `DefaultHasher` promises no such thing).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Only `write` is used; the digest is read from the inner state.
        0
    }
}

impl CompileCache {
    /// A cache in `dir` (created if missing) for artifacts of `engine`.
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> std::io::Result<CompileCache> {
        std::fs::create_dir_all(&dir)?;
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.write(env!("CARGO_PKG_NAME").as_bytes());
        hasher.write(env!("CARGO_PKG_VERSION").as_bytes());
        let digest = hasher.0.finalize();
        Ok(CompileCache {
            dir,
            engine_fingerprint: hex(&digest[..8]),
        })
    }

    /// The artifact path for a plugin file with this content hash.
    pub(crate) fn path_for(&self, content_sha256: &str) -> PathBuf {
        self.dir.join(format!(
            "{content_sha256}-{}.cwasm",
            self.engine_fingerprint
        ))
    }

    /// Loads a cached artifact, or `None` when there is none or it is
    /// unusable (then it is removed so the caller's rebuild replaces it).
    pub(crate) fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        // SAFETY: the cache directory is trusted (see the module docs): only
        // this process writes it, always through `store`, with artifacts
        // produced by `Component::serialize` of an engine with the same
        // fingerprint. wasmtime still checks the header and refuses
        // artifacts of another version or configuration.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"),
                    "discarding unusable compiled plugin");
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }

    /// Writes an artifact atomically (temporary file, then rename).
    pub(crate) fn store(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let result = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(artifact)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_the_known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn artifact_names_combine_content_and_engine() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompileCache::new(dir.path().join("c"), &engine).unwrap();
        let again = CompileCache::new(dir.path().join("c"), &engine).unwrap();
        let path = cache.path_for("abcd");
        assert_eq!(path, again.path_for("abcd"));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("abcd-") && name.ends_with(".cwasm"),
            "{name}"
        );
        assert_eq!(name.len(), "abcd-".len() + 16 + ".cwasm".len());
    }

    #[test]
    fn a_corrupt_artifact_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompileCache::new(dir.path().to_path_buf(), &engine).unwrap();
        let path = cache.path_for("feed");
        cache.store(&path, b"not an artifact").unwrap();
        assert!(cache.load(&engine, &path).is_none());
        assert!(!path.exists());
    }
}
