#!/usr/bin/env bash
# Builds every plugin under plugins/ to target/plugins/<name>.wasm.
#
# Rust plugins (folders with a Cargo.toml) are members of the plugins/ cargo
# workspace and build together for wasm32-unknown-unknown with the
# WebAssembly toolchain scripts/setup.sh recorded in
# target/wasm-toolchain.env (rustup's wasm32 target, or Debian's rustc-web
# with -Zbuild-std), sharing target/plugins-build. Their outputs are core
# modules; ember-plugin-host turns them into components when it loads them.
#
# Plugins in other languages (folders with an ember-plugin.json and no
# Cargo.toml: Python, JavaScript, C) are built one by one by `ember-plugin
# build` (plugin-tools/, the same code as `ember plugin build`) into
# components, with the tools `scripts/setup.sh --plugin-toolchains` installs
# under target/plugin-toolchain/ (and clang from Debian).
#
# Skips what is up to date: the Rust build when every Rust output is newer
# than every Rust source (plugins/ crates, plugin-sdk/, wit/), and each
# other plugin when its output is newer than its folder and wit/. Set
# EMBER_PLUGINS_FORCE=1 to build anyway, or EMBER_PLUGINS_RUST_ONLY=1 to
# build only the Rust plugins (no Python, JavaScript or C tools needed).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { printf 'build-plugins: %s\n' "$*" >&2; }

env_file=target/wasm-toolchain.env
if [ ! -f "$env_file" ]; then
    log "$env_file is missing; running scripts/setup.sh to choose a toolchain"
    bash scripts/setup.sh
fi
# shellcheck source=/dev/null
. "$env_file"

out_dir=target/plugins
build_dir=target/plugins-build
mkdir -p "$out_dir"

# newer_than OUTPUT PATH...: prints the first file under PATHs newer than
# OUTPUT (nothing when OUTPUT is up to date).
newer_than() {
    local output=$1
    shift
    find "$@" -type f -newer "$output" -not -path '*/target/*' -not -path '*/node_modules/*' \
        -not -path '*/__pycache__/*' -print -quit
}

# --- Rust: the plugins/ cargo workspace -----------------------------------

# Every Rust plugin crate: a folder under plugins/ with a Cargo.toml that
# builds a cdylib.
mapfile -t manifests < <(find plugins -mindepth 2 -name Cargo.toml -not -path '*/target/*' | sort)
rust_names=()
rust_dirs=()
for manifest in "${manifests[@]}"; do
    rust_dirs+=("$(dirname "$manifest")")
    rust_names+=("$(basename "$(dirname "$manifest")")")
done

rust_up_to_date() {
    [ -n "${EMBER_PLUGINS_FORCE:-}" ] && return 1
    local name output
    for name in "${rust_names[@]}"; do
        output="$out_dir/$name.wasm"
        [ -f "$output" ] || return 1
        [ -z "$(newer_than "$output" plugins/Cargo.toml plugins/Cargo.lock "${rust_dirs[@]}" plugin-sdk wit)" ] || return 1
    done
    return 0
}

if rust_up_to_date; then
    log "up to date: ${rust_names[*]} (target/plugins/)"
else
    log "building ${rust_names[*]} with the $EMBER_WASM_ROUTE route"
    cargo_args=(build --release --target wasm32-unknown-unknown --manifest-path plugins/Cargo.toml --workspace)
    case "$EMBER_WASM_ROUTE" in
        rustup)
            CARGO_TARGET_DIR="$build_dir" "$EMBER_WASM_CARGO" "${cargo_args[@]}"
            ;;
        debian)
            CARGO_TARGET_DIR="$build_dir" RUSTC="$EMBER_WASM_RUSTC" RUSTC_BOOTSTRAP=1 \
                RUSTFLAGS="$EMBER_WASM_RUSTFLAGS" \
                "$EMBER_WASM_CARGO" "${cargo_args[@]}" -Zbuild-std="$EMBER_WASM_BUILD_STD"
            ;;
        *)
            log "unknown EMBER_WASM_ROUTE=$EMBER_WASM_ROUTE in $env_file"
            exit 1
            ;;
    esac
    for name in "${rust_names[@]}"; do
        built="$build_dir/wasm32-unknown-unknown/release/${name//-/_}.wasm"
        if [ ! -f "$built" ]; then
            log "expected $built after the build"
            exit 1
        fi
        cp "$built" "$out_dir/$name.wasm"
        log "$out_dir/$name.wasm ($(wc -c <"$out_dir/$name.wasm") bytes)"
    done
fi

[ -n "${EMBER_PLUGINS_RUST_ONLY:-}" ] && exit 0

# --- Python, JavaScript, C: one `ember-plugin build` each -----------------

tools=target/plugin-toolchain
other_dirs=()
while IFS= read -r manifest; do
    dir=$(dirname "$manifest")
    [ -f "$dir/Cargo.toml" ] && continue
    other_dirs+=("$dir")
done < <(find plugins -mindepth 2 -name ember-plugin.json -not -path '*/target/*' -not -path '*/node_modules/*' | sort)

stale=()
for dir in "${other_dirs[@]}"; do
    name=$(basename "$dir")
    if ! grep -q "\"name\": *\"$name\"" "$dir/ember-plugin.json"; then
        log "$dir/ember-plugin.json: \"name\" must be the folder's name, $name"
        exit 1
    fi
    output="$out_dir/$name.wasm"
    if [ -n "${EMBER_PLUGINS_FORCE:-}" ] || [ ! -f "$output" ] \
        || [ -n "$(newer_than "$output" "$dir" wit)" ] \
        || { [ -f "$tools/versions" ] && [ "$tools/versions" -nt "$output" ]; }; then
        stale+=("$dir")
    fi
done

if [ ${#stale[@]} -eq 0 ]; then
    [ ${#other_dirs[@]} -gt 0 ] && log "up to date: $(for d in "${other_dirs[@]}"; do printf '%s ' "$(basename "$d")"; done)(target/plugins/)"
    exit 0
fi

bash scripts/setup.sh --plugin-toolchains
log "building ember-plugin (plugin-tools) for the non-Rust plugins"
cargo build --quiet -p ember-plugin-tools --bin ember-plugin
export EMBER_COMPONENTIZE_PY="$repo/$tools/python/bin/componentize-py"
export EMBER_COMPONENTIZE_JS_DIR="$repo/$tools/js"
for dir in "${stale[@]}"; do
    name=$(basename "$dir")
    "${CARGO_TARGET_DIR:-target}/debug/ember-plugin" build "$dir" --out-dir "$out_dir" --target-dir "$build_dir/$name" >&2
done
