#!/usr/bin/env bash
# The edge Worker's numbers: its size (raw and gzip, what Cloudflare's 1 MB limit counts) and
# the classification time per request, in wasm (V8, as in workerd) and native.
#
#   bash edge/bench.sh [--no-build]
#
# 1. builds the Worker (edge/build.sh; skipped with --no-build) and prints its size;
# 2. builds the same crate with feature `bench` (which only adds two exports), runs
#    wasm-bindgen --target nodejs and the Worker's wasm-opt pass on it, and times
#    `classify_for_bench` from node (edge/bench/classify.mjs);
# 3. runs the native bench (`cargo bench -p routeiq-edge --features bench --bench classify`).
set -euo pipefail
edge="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$edge")"
cache="${ROUTEIQ_CACHE:-$HOME/.cache/routeiq}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

if [ "${1:-}" != "--no-build" ]; then
  bash "$edge/build.sh"
fi
wasm="$edge/build/index_bg.wasm"
js="$edge/build/index.js"
[ -f "$wasm" ] || { echo "edge/bench.sh: $wasm missing; run without --no-build" >&2; exit 1; }

echo
echo "== size of the Worker (edge/build)"
printf '%-16s %10s %10s\n' file raw gzip-9
for f in "$wasm" "$js"; do
  printf '%-16s %10d %10d\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(gzip -9 -c "$f" | wc -c)"
done
printf '%-16s %10d %10d   (limit: 1 MB gzip)\n' total \
  $(($(stat -c %s "$wasm") + $(stat -c %s "$js"))) $(($(gzip -9 -c "$wasm" | wc -c) + $(gzip -9 -c "$js" | wc -c)))

echo
echo "== classification time, wasm"
wasm_bindgen="$cache/tools/wasm-bindgen-0.2.130/bin/wasm-bindgen"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# WASM_BINDGEN_USE_JS_SYS=1: as worker-build builds (same macro expansion, same cache).
(cd "$repo" && WASM_BINDGEN_USE_JS_SYS=1 cargo build --quiet -p routeiq-edge --lib \
  --profile release-edge --target wasm32-unknown-unknown --features bench)
"$wasm_bindgen" "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release-edge/routeiq_edge.wasm" \
  --target nodejs --out-dir "$tmp" 2>/dev/null
# The wasm-opt pass worker-build runs (edge/Cargo.toml metadata plus its feature flags).
"$edge/node_modules/.bin/wasm-opt" "$tmp/routeiq_edge_bg.wasm" -o "$tmp/routeiq_edge_bg.wasm" -O3 \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
  --enable-multivalue --enable-reference-types --enable-exception-handling --debuginfo
node "$edge/bench/classify.mjs" "$tmp"

echo
echo "== classification time, native"
(cd "$repo" && cargo bench --quiet -p routeiq-edge --features bench --bench classify 2>/dev/null)
