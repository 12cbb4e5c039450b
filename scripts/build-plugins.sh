#!/usr/bin/env bash
# Builds every plugin under plugins/ (a cargo workspace of its own) for
# wasm32-unknown-unknown and copies each to target/plugins/<name>.wasm. The
# outputs are core modules; ember-plugin-host turns them into components when
# it loads them.
#
# Uses the WebAssembly toolchain scripts/setup.sh recorded in
# target/wasm-toolchain.env (rustup's wasm32 target, or Debian's rustc-web
# with -Zbuild-std). All plugins share one target directory,
# target/plugins-build. Does nothing when every output is newer than every
# source file (plugins/, plugin-sdk/, wit/); set EMBER_PLUGINS_FORCE=1 to build
# anyway.
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

# Every plugin crate: a folder under plugins/ with a Cargo.toml that builds a cdylib.
mapfile -t manifests < <(find plugins -mindepth 2 -name Cargo.toml -not -path '*/target/*' | sort)
names=()
for manifest in "${manifests[@]}"; do
    names+=("$(basename "$(dirname "$manifest")")")
done

up_to_date() {
    [ -n "${EMBER_PLUGINS_FORCE:-}" ] && return 1
    local name output newer
    for name in "${names[@]}"; do
        output="$out_dir/$name.wasm"
        [ -f "$output" ] || return 1
        newer=$(find plugins plugin-sdk wit -type f -newer "$output" -not -path '*/target/*' -print -quit)
        [ -z "$newer" ] || return 1
    done
    return 0
}

if up_to_date; then
    log "up to date: ${names[*]} (target/plugins/)"
    exit 0
fi

log "building ${names[*]} with the $EMBER_WASM_ROUTE route"
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

for name in "${names[@]}"; do
    built="$build_dir/wasm32-unknown-unknown/release/${name//-/_}.wasm"
    if [ ! -f "$built" ]; then
        log "expected $built after the build"
        exit 1
    fi
    cp "$built" "$out_dir/$name.wasm"
    log "$out_dir/$name.wasm ($(wc -c <"$out_dir/$name.wasm") bytes)"
done
