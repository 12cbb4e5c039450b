#!/usr/bin/env bash
# Prepares a Debian 12 machine with rustup stable for building and testing
# Ember. Safe to run repeatedly: every step checks first and skips what is
# already there. Sourced by scripts/run and scripts/test; not meant to be
# called by hand, though it can be.
#
# What it sets up:
#   - rustfmt and clippy for the rustup toolchain;
#   - with --test-peers: the real programs the black-box tests talk to
#     (Prometheus 2.42 with promtool, node_exporter, InfluxDB 1.x,
#     VictoriaMetrics for the storage comparison bench) from
#     Debian, the Python client library for an instrumented test app, and
#     the OpenTelemetry Python SDK with its OTLP/HTTP exporter;
#   - with --plugin-toolchains: what plugins in other languages build with
#     (clang, lld and wasi-libc from Debian for C; componentize-py from PyPI
#     in a venv at target/plugin-toolchain/python; componentize-js from npm
#     in target/plugin-toolchain/js); scripts/build-plugins.sh asks for this
#     when it has such plugins to build;
#   - a WebAssembly toolchain for plugins: rustup's wasm32-unknown-unknown
#     target if it can be had, else Debian's rustc-web route (rustc 1.96 with
#     the standard library's source, built with -Zbuild-std, and lld's
#     wasm-ld). The route taken is written to target/wasm-toolchain.env so
#     plugin builds use the same one.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root for: $*"; return 1
    fi
}

apt_updated=
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$apt_updated" ]; then
        log "apt-get update"
        as_root apt-get update -qq
        apt_updated=1
    fi
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust_components() {
    command -v cargo >/dev/null || { log "cargo not found: install rustup stable first"; exit 1; }
    for component in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
            log "rustup component add $component"
            rustup component add "$component"
        fi
    done
}

# Prints the route to stdout: "rustup" or "debian".
wasm_route() {
    if rustup target list --installed 2>/dev/null | grep -qx 'wasm32-unknown-unknown'; then
        echo rustup; return
    fi
    if [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ] && command -v wasm-ld >/dev/null; then
        echo debian; return
    fi
    # rustup hangs rather than failing where its download host is out of
    # reach, so bound the attempt.
    log "trying: rustup target add wasm32-unknown-unknown"
    if timeout 90 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
        echo rustup; return
    fi
    log "rustup could not add the wasm32 target; falling back to Debian's rustc-web route"
    apt_install rustc-web cargo-web rust-web-src lld >&2
    echo debian
}

ensure_wasm_toolchain() {
    local route env_file="$repo/target/wasm-toolchain.env"
    route=$(wasm_route)
    mkdir -p "$repo/target"
    case "$route" in
        rustup)
            cat >"$env_file" <<ENV
# Written by scripts/setup.sh: build plugins with rustup's wasm32 target.
EMBER_WASM_ROUTE=rustup
EMBER_WASM_CARGO=cargo
EMBER_WASM_RUSTC=
EMBER_WASM_RUSTFLAGS=
EMBER_WASM_BUILD_STD=
ENV
            ;;
        debian)
            cat >"$env_file" <<ENV
# Written by scripts/setup.sh: build plugins with Debian's rustc-web and wasm-ld.
EMBER_WASM_ROUTE=debian
EMBER_WASM_CARGO=/usr/bin/cargo
EMBER_WASM_RUSTC=/usr/bin/rustc
EMBER_WASM_RUSTFLAGS="-C linker=wasm-ld"
EMBER_WASM_BUILD_STD=std,panic_abort
ENV
            ;;
    esac
    log "wasm toolchain route: $route (recorded in target/wasm-toolchain.env)"
}

ensure_test_peers() {
    # Debian's packages start their services on install where an init system
    # runs; the tests start their own instances instead, so keep them off.
    local policy=/usr/sbin/policy-rc.d created_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        created_policy=1
    fi
    apt_install prometheus prometheus-node-exporter influxdb victoria-metrics
    [ -n "$created_policy" ] && as_root rm -f "$policy"
    if ! python3 -c 'import prometheus_client' 2>/dev/null; then
        log "pip install prometheus-client"
        python3 -m pip install --quiet --disable-pip-version-check prometheus-client
    fi
    # The OpenTelemetry Python SDK pushes OTLP metrics in tests/tests/otlp.rs.
    if ! python3 -c 'import opentelemetry.sdk.metrics, opentelemetry.exporter.otlp.proto.http.metric_exporter' 2>/dev/null; then
        log "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"
        python3 -m pip install --quiet --disable-pip-version-check opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
    fi
}

# Versions of the plugin build tools; scripts/build-plugins.sh rebuilds
# plugins when these change (it compares target/plugin-toolchain/versions).
componentize_py_version='0.25.*'
componentize_js_version='0.23.0'

ensure_plugin_toolchains() {
    local tools="$repo/target/plugin-toolchain"
    mkdir -p "$tools"
    # C: clang's wasm32 target, its runtime library, wasm-ld and a libc.
    apt_install clang lld wasi-libc libclang-rt-dev-wasm32
    # Python: componentize-py in a venv of its own.
    if [ ! -x "$tools/python/bin/componentize-py" ]; then
        if ! python3 -m venv "$tools/python" >/dev/null 2>&1; then
            apt_install python3-venv
            python3 -m venv "$tools/python"
        fi
        log "pip install componentize-py==$componentize_py_version (target/plugin-toolchain/python)"
        "$tools/python/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$componentize_py_version"
    fi
    # JavaScript: the componentize-js API, driven by node.
    if [ ! -d "$tools/js/node_modules/@bytecodealliance/componentize-js" ]; then
        command -v npm >/dev/null || apt_install nodejs npm
        mkdir -p "$tools/js"
        cat >"$tools/js/package.json" <<JSON
{ "name": "ember-js-plugin-toolchain", "private": true, "type": "module",
  "dependencies": { "@bytecodealliance/componentize-js": "$componentize_js_version" } }
JSON
        log "npm install @bytecodealliance/componentize-js@$componentize_js_version (target/plugin-toolchain/js)"
        (cd "$tools/js" && npm install --no-audit --no-fund --silent)
    fi
    # Rewritten only on a change, so that plugins are not rebuilt for nothing.
    local versions
    versions=$(printf 'componentize-py %s\ncomponentize-js %s' "$componentize_py_version" "$componentize_js_version")
    if [ "$(cat "$tools/versions" 2>/dev/null)" != "$versions" ]; then
        printf '%s\n' "$versions" >"$tools/versions"
    fi
}

ensure_rust_components
ensure_wasm_toolchain
for arg in "$@"; do
    case "$arg" in
        --test-peers) ensure_test_peers ;;
        --plugin-toolchains) ensure_plugin_toolchains ;;
        *) log "unknown argument: $arg"; exit 2 ;;
    esac
done
