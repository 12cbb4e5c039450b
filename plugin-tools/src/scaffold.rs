//! `ember plugin new`: write a plugin project that builds as it is.
//!
//! Every project gets `ember-plugin.json` (name, kind, language), a
//! `README.md` with the build and inspect commands and an `ember.yml`
//! snippet that loads the plugin, and a `.gitignore`. Then, per language:
//!
//! | language | files |
//! | --- | --- |
//! | Rust | `Cargo.toml` (a `cdylib` depending on `ember-plugin-sdk`), `src/lib.rs` |
//! | Python | `app.py`, `wit/` (the contract), and for relabelers `ember_packed.py` (packed batches to and from lists) |
//! | JavaScript | `app.js`, `package.json` (componentize-js as a dev dependency), `wit/` |
//! | C | `plugin.c`, `wit/` (bindings are generated at build time) |
//!
//! The templates are in `plugin-tools/templates/`; each is a small working
//! plugin of its kind that reads one configuration key.

use std::path::{Path, PathBuf};

use crate::manifest::{self, FILE_NAME, Manifest, is_valid_name};
use crate::{Kind, Language, ToolError, wit};

/// What to create.
#[derive(Debug, Clone)]
pub struct Options {
    /// The plugin's name; see [`manifest::NAME_RULE`].
    pub name: String,
    /// Its world.
    pub kind: Kind,
    /// Its language.
    pub language: Language,
    /// For Rust: the `ember-plugin-sdk` to depend on by path. `None` uses a
    /// registry dependency (`ember-plugin-sdk = "0.1"`).
    pub sdk_path: Option<PathBuf>,
}

impl Options {
    /// Options with the SDK of the source tree this tool was built from,
    /// when that tree is still on disk.
    pub fn new(name: &str, kind: Kind, language: Language) -> Options {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
        Options {
            name: name.to_owned(),
            kind,
            language,
            sdk_path: sdk
                .join("Cargo.toml")
                .is_file()
                .then(|| sdk.canonicalize().unwrap_or(sdk)),
        }
    }
}

/// Why Python cannot implement `remote-storage` with componentize-py 0.25.
pub const PYTHON_REMOTE_STORAGE: &str = "remote-storage plugins cannot be written in Python yet: \
    the world exports functions named `write` and `read`, whose core symbols collide with \
    libc's in componentize-py 0.25 (it panics while linking); use Rust, JavaScript or C";

/// One template per language and kind, by the kind's world name.
fn template(language: Language, kind: Kind) -> &'static str {
    macro_rules! per_kind {
        ($dir:literal, $ext:literal) => {
            match kind {
                Kind::Discovery => {
                    include_str!(concat!("../templates/", $dir, "/discovery.", $ext))
                }
                Kind::Exporter => include_str!(concat!("../templates/", $dir, "/exporter.", $ext)),
                Kind::Relabeler => {
                    include_str!(concat!("../templates/", $dir, "/relabeler.", $ext))
                }
                Kind::RemoteStorage => {
                    include_str!(concat!("../templates/", $dir, "/remote-storage.", $ext))
                }
            }
        };
    }
    match language {
        Language::Rust => per_kind!("rust", "rs"),
        Language::Python => per_kind!("python", "py"),
        Language::Js => per_kind!("js", "js"),
        Language::C => per_kind!("c", "c"),
    }
}

/// Creates the project in `dir`, which must not exist or be empty. Returns
/// the files written, relative to `dir`.
pub fn new_project(dir: &Path, options: &Options) -> Result<Vec<PathBuf>, ToolError> {
    if !is_valid_name(&options.name) {
        return Err(ToolError::Usage(format!(
            "plugin name {:?}: {}",
            options.name,
            manifest::NAME_RULE
        )));
    }
    if options.language == Language::Python && options.kind == Kind::RemoteStorage {
        return Err(ToolError::Usage(PYTHON_REMOTE_STORAGE.to_owned()));
    }
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(ToolError::Usage(format!(
            "{} exists and is not empty; choose another --dir",
            dir.display()
        )));
    }
    let ident = options.name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", &options.name)
            .replace("{{ident}}", &ident)
            .replace("{{kind}}", options.kind.world())
    };
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let source = fill(template(options.language, options.kind));
    match options.language {
        Language::Rust => {
            let sdk_dependency = match &options.sdk_path {
                Some(path) => format!(
                    "ember-plugin-sdk = {{ path = {:?} }}",
                    path.display().to_string()
                ),
                None => "ember-plugin-sdk = \"0.1\"".to_owned(),
            };
            let cargo = fill(include_str!("../templates/rust/Cargo.toml.tmpl"))
                .replace("{{sdk_dependency}}", &sdk_dependency);
            files.push(("Cargo.toml".into(), cargo));
            files.push(("src/lib.rs".into(), source));
        }
        Language::Python => {
            files.push(("app.py".into(), source));
            if options.kind == Kind::Relabeler {
                files.push((
                    "ember_packed.py".into(),
                    include_str!("../templates/python/ember_packed.py").to_owned(),
                ));
            }
        }
        Language::Js => {
            files.push(("app.js".into(), source));
            files.push((
                "package.json".into(),
                fill(include_str!("../templates/js/package.json.tmpl")),
            ));
        }
        Language::C => files.push(("plugin.c".into(), source)),
    }
    let manifest = Manifest {
        name: options.name.clone(),
        kind: Some(options.kind),
        language: options.language,
        wit: None,
        source: None,
    };
    let manifest_text = serde_json::to_string_pretty(&manifest)
        .map_err(|error| ToolError::Usage(error.to_string()))?;
    files.push((FILE_NAME.into(), format!("{manifest_text}\n")));
    files.push((
        ".gitignore".into(),
        "target/\nnode_modules/\n.venv/\n__pycache__/\n".to_owned(),
    ));
    files.push(("README.md".into(), readme(options)));

    for (relative, text) in &files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(ToolError::io(parent))?;
        }
        std::fs::write(&path, text).map_err(ToolError::io(&path))?;
    }
    let mut written: Vec<PathBuf> = files.into_iter().map(|(path, _)| path).collect();
    // Other languages generate their bindings from the contract at build
    // time, so the project carries its own copy of it.
    if options.language != Language::Rust {
        wit::write_to(&dir.join("wit"))?;
        written.extend(
            wit::FILES
                .iter()
                .map(|(name, _)| Path::new("wit").join(name)),
        );
    }
    Ok(written)
}

/// The project's README: how to build it, inspect it and load it.
fn readme(options: &Options) -> String {
    let name = &options.name;
    let kind = options.kind.world();
    let prerequisites = match options.language {
        Language::Rust => {
            "a Rust toolchain with the `wasm32-unknown-unknown` target \
            (`rustup target add wasm32-unknown-unknown`)"
        }
        Language::Python => {
            "componentize-py in `.venv` \
            (`python3 -m venv .venv && .venv/bin/pip install 'componentize-py==0.25.*'`)"
        }
        Language::Js => "Node.js and componentize-js (`npm install`)",
        Language::C => {
            "clang, lld and wasi-libc (Debian: \
            `apt-get install clang lld wasi-libc libclang-rt-dev-wasm32`)"
        }
    };
    let usage = match options.kind {
        Kind::Discovery => format!(
            "scrape_configs:\n  - job_name: {name}\n    plugin_sd_configs:\n      - plugin: {name}\n"
        ),
        Kind::Exporter => format!(
            "scrape_configs:\n  - job_name: {name}\n    plugin: {name}\n    static_configs:\n      - targets: [\"localhost:1\"]\n"
        ),
        Kind::Relabeler => format!(
            "scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [\"localhost:9100\"]\n    metric_relabel_configs:\n      - action: plugin\n        plugin: {name}\n"
        ),
        Kind::RemoteStorage => format!("remote_write:\n  - plugin: {name}\n"),
    };
    let config = match (options.kind, options.language) {
        (Kind::Discovery, _) => "      targets: \"localhost:9100\"\n",
        (Kind::Exporter, _) => "      greeting: \"hello\"\n",
        (Kind::Relabeler, Language::C) => "      drop_label: \"drop\"\n",
        (Kind::Relabeler, _) => "      drop_label: \"drop\"\n      add: \"source=plugin\"\n",
        (Kind::RemoteStorage, _) => "      {}\n",
    };
    let config = if options.kind == Kind::RemoteStorage {
        "    config: {}\n".to_owned()
    } else {
        format!("    config:\n{config}")
    };
    format!(
        "# {name}\n\n\
         An Ember {kind} plugin in {lang}, created by `ember plugin new`.\n\n\
         ## Build\n\n\
         Needs {prerequisites}.\n\n\
         ```sh\nember plugin build .          # writes target/{name}.wasm\n\
         ember plugin inspect target/{name}.wasm\n```\n\n\
         ## Load it\n\n\
         ```yaml\nplugins:\n  - name: {name}\n    kind: {kind}\n    path: target/{name}.wasm\n{config}\n{usage}```\n\n\
         See the plugin author's guide (`docs/plugins.md` in the Ember repository)\n\
         for the contract, capabilities, limits and debugging.\n",
        lang = options.language,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_and_kind_has_a_template_naming_the_plugin() {
        for language in [Language::Rust, Language::Python, Language::Js, Language::C] {
            for kind in Kind::ALL {
                let text = template(language, kind);
                assert!(text.contains("{{name}}"), "{language} {kind}");
            }
        }
    }

    #[test]
    fn a_project_has_its_manifest_readme_and_contract() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        let files = new_project(
            &project,
            &Options::new("my-relabeler", Kind::Relabeler, Language::Python),
        )
        .unwrap();
        assert!(files.contains(&PathBuf::from("ember_packed.py")));
        let manifest = Manifest::load(&project).unwrap();
        assert_eq!(manifest.kind, Some(Kind::Relabeler));
        assert_eq!(manifest.language, Language::Python);
        assert!(project.join("wit/worlds.wit").is_file());
        let app = std::fs::read_to_string(project.join("app.py")).unwrap();
        assert!(app.contains("my-relabeler") && !app.contains("{{"), "{app}");
        let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
        assert!(readme.contains("kind: relabeler"), "{readme}");
    }

    #[test]
    fn python_remote_storage_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let error = new_project(
            &dir.path().join("p"),
            &Options::new("p", Kind::RemoteStorage, Language::Python),
        )
        .unwrap_err();
        assert!(error.to_string().contains("collide with libc"), "{error}");
    }

    #[test]
    fn bad_names_and_busy_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = new_project(
            dir.path(),
            &Options::new("Bad Name", Kind::Exporter, Language::Rust),
        )
        .unwrap_err();
        assert!(error.to_string().contains("lower-case"), "{error}");
        std::fs::write(dir.path().join("x"), "").unwrap();
        let error = new_project(
            dir.path(),
            &Options::new("ok", Kind::Exporter, Language::Rust),
        )
        .unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
    }
}
