#!/usr/bin/env bash
# Builds the edge Worker into edge/build/ (index.js + index_bg.wasm) with worker-build, and
# checks its size: the gzip'd Worker (wasm + JS) must stay within 1 MB.
#
# Installs what is missing, once, into a cache outside the clone ($ROUTEIQ_CACHE, default
# $HOME/.cache/routeiq): wasm-bindgen-cli and worker-build (`cargo install --root
# $cache/tools/<name>-<version>`), and the npm tools of edge/package-lock.json (`npm ci`:
# esbuild and binaryen's wasm-opt, which worker-build would otherwise download from GitHub,
# miniflare and wrangler). `--no-npm` leaves edge/node_modules alone (wrangler's build command:
# wrangler runs from there); `--no-install` installs nothing (fails if a tool is missing).
set -euo pipefail
# A failed install inside $(tool ...) must stop the script, not yield a missing path.
shopt -s inherit_errexit
edge="$(cd "$(dirname "$0")" && pwd)"
cache="${ROUTEIQ_CACHE:-$HOME/.cache/routeiq}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
install=1
npm=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0; npm=0 ;;
    --no-npm) npm=0 ;;
    *) echo "usage: edge/build.sh [--no-npm] [--no-install]" >&2; exit 2 ;;
  esac
done

# Pinned with edge/Cargo.toml (wasm-bindgen = "=0.2.130", worker = "=0.8.7").
WASM_BINDGEN_VERSION=0.2.130
WORKER_BUILD_VERSION=0.8.7

tool() { # tool NAME VERSION CRATE BIN [cargo install args...]: path of a cached cargo-installed tool
  local name=$1 version=$2 crate=$3 bin=$4; shift 4
  local root="$cache/tools/$name-$version"
  if [ ! -x "$root/bin/$bin" ]; then
    [ "$install" = 1 ] || { echo "edge/build.sh: $root/bin/$bin missing" >&2; exit 1; }
    echo "edge/build.sh: installing $crate $version into $root" >&2
    cargo install --quiet --root "$root" "$crate" --version "=$version" "$@" >&2
  fi
  echo "$root/bin/$bin"
}

rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
# wasm-bindgen-cli without --locked: its lockfile pins a webpki-roots release the crates.io
# index here does not carry (and its default features only add the downloader it needs not).
WASM_BINDGEN_BIN="$(tool wasm-bindgen "$WASM_BINDGEN_VERSION" wasm-bindgen-cli wasm-bindgen --no-default-features)"
WORKER_BUILD="$(tool worker-build "$WORKER_BUILD_VERSION" worker-build worker-build --locked)"

# npm tools: reinstalled when package-lock.json changes (its hash is kept in node_modules).
lock_hash="$(sha256sum "$edge/package-lock.json" | cut -d' ' -f1)"
if [ "$npm" = 1 ] && [ "$(cat "$edge/node_modules/.routeiq-lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
  (cd "$edge" && npm ci --no-audit --no-fund --cache "$cache/npm" --prefer-offline --loglevel=error)
  echo "$lock_hash" >"$edge/node_modules/.routeiq-lock-hash"
fi

for bin in esbuild wasm-opt; do
  [ -x "$edge/node_modules/.bin/$bin" ] || { echo "edge/build.sh: edge/node_modules/.bin/$bin missing: run npm ci in edge/" >&2; exit 1; }
done
# worker-build's own downloads (GitHub, npm) are replaced by these.
export WASM_BINDGEN_BIN ESBUILD_BIN="$edge/node_modules/.bin/esbuild" WASM_OPT_BIN="$edge/node_modules/.bin/wasm-opt"
(cd "$edge" && "$WORKER_BUILD" --profile release-edge)

wasm="$edge/build/index_bg.wasm"
js="$edge/build/index.js"
raw=$(($(stat -c %s "$wasm") + $(stat -c %s "$js")))
gz=$(($(gzip -9 -c "$wasm" | wc -c) + $(gzip -9 -c "$js" | wc -c)))
printf 'edge worker: wasm %d bytes (gzip %d), js %d bytes (gzip %d); total %d bytes, gzip %d bytes (limit 1048576)\n' \
  "$(stat -c %s "$wasm")" "$(gzip -9 -c "$wasm" | wc -c)" "$(stat -c %s "$js")" "$(gzip -9 -c "$js" | wc -c)" "$raw" "$gz"
if [ "$gz" -gt 1048576 ]; then
  echo "edge/build.sh: the gzip'd Worker is $gz bytes, over Cloudflare's 1 MB limit" >&2
  exit 1
fi
