#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need once, into a cache outside
# the clone ($HOME/.cache/routeiq): a Python venv with the `openai` SDK for the SDK
# compatibility test. Extra arguments go to `cargo test`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${ROUTEIQ_CACHE:-$HOME/.cache/routeiq}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

venv="$cache/venv-openai"
if ! "$venv/bin/python" -c 'import openai' >/dev/null 2>&1; then
  echo "tests/run.sh: creating $venv with the openai SDK"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'openai>=1.50,<3'
fi
export ROUTEIQ_TEST_PYTHON="$venv/bin/python"

cd "$repo"
cargo test --workspace "$@"
