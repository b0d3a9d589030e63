#!/usr/bin/env bash
# Gateway overhead benchmark: drives the mock upstream directly, then through routeiq-gateway,
# with oha at concurrency 1 and 64, and prints throughput, p50/p99 and the latency the gateway
# adds.
#
# usage: tests/bench/gateway_bench.sh [--direct-only] [--skip-build] [--keep]
#
#   --direct-only   benchmark the mock alone (no gateway build or run)
#   --skip-build    use the release binaries already in $CARGO_TARGET_DIR/release
#   --keep          keep the work dir (config, logs, oha JSON) and print its path
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: <workspace>/target)
#   N_C1, N_C64        requests at concurrency 1 / 64 (default 2000 / 20000)
#   WARMUP             warm-up requests per target (default 500)
#   LATENCY_MS         fixed latency of the mock upstream (default 0)
#   DEPLOYMENTS        deployments in the `bench` model group (default 1)
#   GATEWAY_RUST_LOG   RUST_LOG for the gateway (default: warn; per-request info logs
#                      would measure the terminal, not the gateway)
#
# Needs: cargo, python3, and oha 1.x (installed with `cargo install oha --locked` when missing;
# wrk from Debian is used if that fails).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
N_C1="${N_C1:-2000}"
N_C64="${N_C64:-20000}"
WARMUP="${WARMUP:-500}"
LATENCY_MS="${LATENCY_MS:-0}"
DEPLOYMENTS="${DEPLOYMENTS:-1}"
GATEWAY_RUST_LOG="${GATEWAY_RUST_LOG:-warn}"

DIRECT_ONLY=0
SKIP_BUILD=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --direct-only) DIRECT_ONLY=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is required"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/routeiq-bench.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $KEEP == 1 ]]; then
    log "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ---------------------------------------------------------------------------------
if [[ $SKIP_BUILD == 0 ]]; then
  pkgs=(-p routeiq-testkit)
  [[ $DIRECT_ONLY == 1 ]] || pkgs+=(-p routeiq-gateway)
  log "building release binaries (${pkgs[*]}) into $CARGO_TARGET_DIR"
  (cd "$ROOT" && cargo build --release "${pkgs[@]}") || die "cargo build failed"
fi
[[ -x "$BIN/mock-upstream" ]] || die "$BIN/mock-upstream not found (build it, or drop --skip-build)"
if [[ $DIRECT_ONLY == 0 ]]; then
  [[ -x "$BIN/routeiq-gateway" ]] || die "$BIN/routeiq-gateway not found (or use --direct-only)"
fi

# ---- load generator ------------------------------------------------------------------------
TOOL=""
if oha --version 2>/dev/null | grep -q '^oha 1\.'; then
  TOOL=oha
else
  log "oha 1.x not found: cargo install oha --locked"
  if cargo install oha --locked >"$WORK/oha-install.log" 2>&1 && oha --version 2>/dev/null | grep -q '^oha 1\.'; then
    TOOL=oha
  else
    log "oha did not install (see $WORK/oha-install.log); trying wrk from Debian"
    if ! command -v wrk >/dev/null; then
      (apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; }) \
        || die "neither oha nor wrk could be installed"
    fi
    TOOL=wrk
  fi
fi
log "load generator: $($TOOL --version 2>&1 | head -1)"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS PID: until URL answers 200, or fail if PID died.
wait_http() {
  local url=$1 secs=$2 pid=$3 i
  for ((i = 0; i < secs * 50; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    if python3 - "$url" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()
PY
      return 0
    fi
    sleep 0.02
  done
  return 1
}

BODY='{"model":"bench","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":16}'
printf '%s' "$BODY" >"$WORK/body.json"
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
EOF

# load NAME URL CONCURRENCY REQUESTS: writes $WORK/NAME.json as {rps, p50, p99, ok, total}
# (latencies in seconds).
load() {
  local name=$1 url=$2 c=$3 n=$4
  if [[ $TOOL == oha ]]; then
    oha --no-tui --output-format json -n "$n" -c "$c" -m POST \
      -H 'content-type: application/json' -D "$WORK/body.json" "$url" >"$WORK/$name.raw.json"
    python3 - "$WORK/$name.raw.json" "$WORK/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution") or {}
ok = int(codes.get("200", 0))
total = sum(int(v) for v in codes.values()) + sum(int(v) for v in (d.get("errorDistribution") or {}).values())
p = d.get("latencyPercentiles") or {}
json.dump({"rps": d["summary"]["requestsPerSec"], "p50": p.get("p50"), "p99": p.get("p99"),
           "ok": ok, "total": total}, open(sys.argv[2], "w"))
PY
  else
    # wrk runs for a duration: estimate one from the request count (at least 3 s).
    local secs=$(( n / 2000 )); ((secs < 3)) && secs=3
    local threads=$(( c < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$c" -d"${secs}s" --latency -s "$WORK/post.lua" "$url" >"$WORK/$name.raw.txt"
    python3 - "$WORK/$name.raw.txt" "$WORK/$name.json" <<'PY'
import json, re, sys
t = open(sys.argv[1]).read()
def secs(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)", v)
    mult = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]
    return float(m.group(1)) * mult
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = secs(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = secs(re.search(r"\s99%\s+(\S+)", t).group(1))
total = int(re.search(r"(\d+) requests in", t).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", t))
ok = total - (int(bad.group(1)) if bad else 0)
json.dump({"rps": rps, "p50": p50, "p99": p99, "ok": ok, "total": total + errs}, open(sys.argv[2], "w"))
PY
  fi
  python3 - "$WORK/$name.json" "$name" <<'PY' >&2
import json, sys
r = json.load(open(sys.argv[1]))
warn = "" if r["ok"] == r["total"] else f"  WARNING: only {r['ok']}/{r['total']} answered 200"
print(f"[bench] {sys.argv[2]:<14} {r['rps']:>10.0f} req/s  p50 {r['p50']*1e3:.3f} ms  p99 {r['p99']*1e3:.3f} ms{warn}")
PY
}

# ---- mock upstream -------------------------------------------------------------------------
MOCK_PORT="$(free_port)"
"$BIN/mock-upstream" --port "$MOCK_PORT" --latency-ms "$LATENCY_MS" >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
wait_http "http://127.0.0.1:$MOCK_PORT/health" 10 "$MOCK_PID" \
  || { cat "$WORK/mock.log" >&2; die "mock-upstream did not start"; }
log "mock-upstream on 127.0.0.1:$MOCK_PORT (latency ${LATENCY_MS} ms)"
DIRECT_URL="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"

# ---- gateway -------------------------------------------------------------------------------
if [[ $DIRECT_ONLY == 0 ]]; then
  GW_PORT="$(free_port)"
  {
    echo "model_list:"
    for ((i = 0; i < DEPLOYMENTS; i++)); do
      cat <<EOF
  - model_name: bench
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: sk-bench
EOF
    done
    cat <<EOF
router_settings:
  routing_strategy: simple-shuffle
EOF
  } >"$WORK/config.yaml"
  RUST_LOG="$GATEWAY_RUST_LOG" "$BIN/routeiq-gateway" --config "$WORK/config.yaml" \
    --host 127.0.0.1 --port "$GW_PORT" >"$WORK/gateway.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  if ! wait_http "http://127.0.0.1:$GW_PORT/health/liveliness" 20 "$GW_PID"; then
    cat "$WORK/gateway.log" >&2
    die "routeiq-gateway did not get healthy"
  fi
  log "routeiq-gateway on 127.0.0.1:$GW_PORT (RUST_LOG=$GATEWAY_RUST_LOG)"
  GW_URL="http://127.0.0.1:$GW_PORT/v1/chat/completions"
  # One request by hand first, so that a broken gateway fails loudly instead of as 0 req/s.
  python3 - "$GW_URL" "$WORK/body.json" <<'PY' || { cat "$WORK/gateway.log" >&2; die "gateway answered badly"; }
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=open(sys.argv[2], "rb").read(),
                             headers={"content-type": "application/json"})
body = json.load(urllib.request.urlopen(req, timeout=10))
text = body["choices"][0]["message"]["content"]
assert "mock answer from" in text, body
PY
fi

# ---- runs ----------------------------------------------------------------------------------
log "warm-up ($WARMUP requests per target)"
load warmup-direct "$DIRECT_URL" 8 "$WARMUP" 2>/dev/null
[[ $DIRECT_ONLY == 1 ]] || load warmup-gateway "$GW_URL" 8 "$WARMUP" 2>/dev/null

for c in 1 64; do
  n=$N_C1
  [[ $c == 64 ]] && n=$N_C64
  load "direct-c$c" "$DIRECT_URL" "$c" "$n"
  [[ $DIRECT_ONLY == 1 ]] || load "gateway-c$c" "$GW_URL" "$c" "$n"
done

# ---- report --------------------------------------------------------------------------------
python3 - "$WORK" "$DIRECT_ONLY" "$TOOL" "$N_C1" "$N_C64" "$LATENCY_MS" "$(nproc)" <<'PY'
import json, os, sys
work, direct_only, tool, n1, n64, latency, cpus = sys.argv[1:8]
direct_only = direct_only == "1"
def get(name):
    p = os.path.join(work, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
ms = lambda s: s * 1e3
print()
print(f"RouteIQ gateway benchmark ({tool}; c=1: {n1} requests, c=64: {n64}; "
      f"mock latency {latency} ms; {cpus} CPUs shared by load generator, gateway and mock)")
print()
print(f"{'target':<10}{'conc':>6}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'200s':>14}")
for c in (1, 64):
    for target in ("direct", "gateway"):
        r = get(f"{target}-c{c}")
        if r is None:
            continue
        print(f"{target:<10}{c:>6}{r['rps']:>12.0f}{ms(r['p50']):>10.3f}{ms(r['p99']):>10.3f}"
              f"{str(r['ok']) + '/' + str(r['total']):>14}")
if direct_only:
    print("\n(direct only: the gateway was not run)")
    sys.exit(0)
print()
print(f"{'added by the gateway':<24}{'conc':>6}{'p50 ms':>10}{'p99 ms':>10}")
for c in (1, 64):
    d, g = get(f"direct-c{c}"), get(f"gateway-c{c}")
    print(f"{'':<24}{c:>6}{ms(g['p50'] - d['p50']):>10.3f}{ms(g['p99'] - d['p99']):>10.3f}")
d, g = get("direct-c64"), get("gateway-c64")
print()
print(f"throughput gateway/direct at c=64: {g['rps'] / d['rps']:.2f} "
      f"({g['rps']:.0f} vs {d['rps']:.0f} req/s)")
bad = [n for n in ("direct-c1", "gateway-c1", "direct-c64", "gateway-c64")
       if (r := get(n)) and r["ok"] != r["total"]]
if bad:
    print(f"WARNING: non-200 answers in {', '.join(bad)}: numbers are not comparable")
    sys.exit(1)
PY
