#!/usr/bin/env bash
# Gateway overhead benchmark: drives the mock upstream directly, through a bare hyper proxy
# (the floor: the same HTTP stack doing nothing else), through routeiq-gateway, and through a
# second routeiq-gateway with a virtual key (in-memory key store; the key has a budget and
# rpm, tpm and parallel limits, so every check runs), with oha at concurrency 1 and 64, and
# prints throughput, p50/p99, the latency each hop adds and what the key adds. The
# three targets take turns for ROUNDS rounds and the medians are reported, so that a noisy
# machine moves all of them alike.
#
# usage: tests/bench/gateway_bench.sh [--direct-only] [--skip-build] [--keep]
#
#   --direct-only   benchmark the mock alone (no gateway build or run)
#   --skip-build    use the release binaries already in $CARGO_TARGET_DIR/release
#   --keep          keep the work dir (config, logs, oha JSON) and print its path
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: <workspace>/target)
#   N_C1, N_C64        requests at concurrency 1 / 64 per round (default 2000 / 20000)
#   ROUNDS             rounds (default 3)
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
ROUNDS="${ROUNDS:-3}"
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
  pkgs=(-p routeiq-testkit)  # mock-upstream and bare-proxy
  [[ $DIRECT_ONLY == 1 ]] || pkgs+=(-p routeiq-gateway)
  log "building release binaries (${pkgs[*]}) into $CARGO_TARGET_DIR"
  (cd "$ROOT" && cargo build --release "${pkgs[@]}") || die "cargo build failed"
fi
[[ -x "$BIN/mock-upstream" ]] || die "$BIN/mock-upstream not found (build it, or drop --skip-build)"
if [[ $DIRECT_ONLY == 0 ]]; then
  [[ -x "$BIN/routeiq-gateway" ]] || die "$BIN/routeiq-gateway not found (or use --direct-only)"
  [[ -x "$BIN/bare-proxy" ]] || die "$BIN/bare-proxy not found (build routeiq-testkit)"
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

# load NAME URL CONCURRENCY REQUESTS [BEARER]: writes $WORK/NAME.json as {rps, p50, p99, ok,
# total} (latencies in seconds).
load() {
  local name=$1 url=$2 c=$3 n=$4 bearer=${5:-}
  local auth=()
  [[ -n $bearer ]] && auth=(-H "authorization: Bearer $bearer")
  if [[ $TOOL == oha ]]; then
    oha --no-tui --output-format json -n "$n" -c "$c" -m POST "${auth[@]}" \
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
    local script="$WORK/post.lua"
    if [[ -n $bearer ]]; then
      script="$WORK/post-key.lua"
      { cat "$WORK/post.lua"; echo "wrk.headers[\"Authorization\"] = \"Bearer $bearer\""; } >"$script"
    fi
    wrk -t"$threads" -c"$c" -d"${secs}s" --latency -s "$script" "$url" >"$WORK/$name.raw.txt"
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

# ---- gateway with a virtual key ------------------------------------------------------------
if [[ $DIRECT_ONLY == 0 ]]; then
  KEY_PORT="$(free_port)"
  { cat "$WORK/config.yaml"; printf 'general_settings:\n  master_key: sk-bench-master\n'; } >"$WORK/config-keys.yaml"
  ROUTEIQ_KEYS_BACKEND=memory RUST_LOG="$GATEWAY_RUST_LOG" "$BIN/routeiq-gateway" \
    --config "$WORK/config-keys.yaml" --host 127.0.0.1 --port "$KEY_PORT" >"$WORK/gateway-key.log" 2>&1 &
  KEY_PID=$!
  PIDS+=("$KEY_PID")
  if ! wait_http "http://127.0.0.1:$KEY_PORT/health/liveliness" 20 "$KEY_PID"; then
    cat "$WORK/gateway-key.log" >&2
    die "routeiq-gateway (virtual keys) did not get healthy"
  fi
  # A key with every check on and limits the benchmark never reaches.
  VKEY="$(python3 - "http://127.0.0.1:$KEY_PORT/key/generate" <<'PY'
import json, sys, urllib.request
body = {"models": ["bench"], "max_budget": 1e9, "budget_duration": "30d", "rpm_limit": 10**9,
        "tpm_limit": 10**12, "max_parallel_requests": 100000, "key_alias": "bench"}
req = urllib.request.Request(sys.argv[1], data=json.dumps(body).encode(),
                             headers={"content-type": "application/json",
                                      "authorization": "Bearer sk-bench-master"})
print(json.load(urllib.request.urlopen(req, timeout=10))["key"])
PY
)" || { cat "$WORK/gateway-key.log" >&2; die "could not create a virtual key"; }
  KEY_URL="http://127.0.0.1:$KEY_PORT/v1/chat/completions"
  log "routeiq-gateway with a virtual key on 127.0.0.1:$KEY_PORT"
fi

# ---- bare proxy (the floor) ----------------------------------------------------------------
if [[ $DIRECT_ONLY == 0 ]]; then
  BARE_PORT="$(free_port)"
  "$BIN/bare-proxy" --port "$BARE_PORT" --upstream "$DIRECT_URL" >"$WORK/bare.log" 2>&1 &
  BARE_PID=$!
  PIDS+=("$BARE_PID")
  # The bare proxy forwards any path; /health reaches the mock's health check by POST, so
  # wait for its port with a POST of the benchmark body instead.
  for ((i = 0; i < 250; i++)); do
    python3 - "http://127.0.0.1:$BARE_PORT/" "$WORK/body.json" <<'PY' 2>/dev/null && break
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=open(sys.argv[2], "rb").read(),
                             headers={"content-type": "application/json"})
urllib.request.urlopen(req, timeout=1).read()
PY
    kill -0 "$BARE_PID" 2>/dev/null || { cat "$WORK/bare.log" >&2; die "bare-proxy died"; }
    sleep 0.02
  done
  log "bare-proxy on 127.0.0.1:$BARE_PORT"
  BARE_URL="http://127.0.0.1:$BARE_PORT/"
fi

# ---- runs ----------------------------------------------------------------------------------
log "warm-up ($WARMUP requests per target)"
load warmup-direct "$DIRECT_URL" 8 "$WARMUP" 2>/dev/null
if [[ $DIRECT_ONLY == 0 ]]; then
  load warmup-bare "$BARE_URL" 8 "$WARMUP" 2>/dev/null
  load warmup-gateway "$GW_URL" 8 "$WARMUP" 2>/dev/null
  load warmup-gateway-key "$KEY_URL" 8 "$WARMUP" "$VKEY" 2>/dev/null
fi

for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round of $ROUNDS"
  for c in 1 64; do
    n=$N_C1
    [[ $c == 64 ]] && n=$N_C64
    load "direct-c$c-r$round" "$DIRECT_URL" "$c" "$n"
    if [[ $DIRECT_ONLY == 0 ]]; then
      load "bare-c$c-r$round" "$BARE_URL" "$c" "$n"
      load "gateway-c$c-r$round" "$GW_URL" "$c" "$n"
      load "gwkey-c$c-r$round" "$KEY_URL" "$c" "$n" "$VKEY"
    fi
  done
done

# ---- report --------------------------------------------------------------------------------
python3 - "$WORK" "$DIRECT_ONLY" "$TOOL" "$N_C1" "$N_C64" "$LATENCY_MS" "$(nproc)" "$ROUNDS" <<'PY'
import json, os, statistics, sys
work, direct_only, tool, n1, n64, latency, cpus, rounds = sys.argv[1:9]
direct_only, rounds = direct_only == "1", int(rounds)
def runs(target, c):
    out = []
    for r in range(1, rounds + 1):
        p = os.path.join(work, f"{target}-c{c}-r{r}.json")
        if os.path.exists(p):
            out.append(json.load(open(p)))
    return out
def med(target, c, key):
    return statistics.median(r[key] for r in runs(target, c))
ms = lambda s: s * 1e3
targets = ["direct"] if direct_only else ["direct", "bare", "gateway", "gwkey"]
print()
print(f"RouteIQ gateway benchmark ({tool}; {rounds} rounds, medians; per round c=1: {n1} "
      f"requests, c=64: {n64}; mock latency {latency} ms; {cpus} CPUs shared by load generator, "
      f"gateway and mock; bare = hyper proxy doing nothing else)")
print()
print(f"{'target':<10}{'conc':>6}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
for c in (1, 64):
    for t in targets:
        print(f"{t:<10}{c:>6}{med(t, c, 'rps'):>12.0f}{ms(med(t, c, 'p50')):>10.3f}"
              f"{ms(med(t, c, 'p99')):>10.3f}")
bad = [f"{t}-c{c}" for t in targets for c in (1, 64) if any(r["ok"] != r["total"] for r in runs(t, c))]
if direct_only:
    print("\n(direct only: the gateway was not run)")
else:
    print()
    print(f"{'added over direct':<24}{'conc':>6}{'p50 ms':>10}{'p99 ms':>10}")
    for t in ("bare", "gateway", "gwkey"):
        for c in (1, 64):
            print(f"{t:<24}{c:>6}{ms(med(t, c, 'p50') - med('direct', c, 'p50')):>10.3f}"
                  f"{ms(med(t, c, 'p99') - med('direct', c, 'p99')):>10.3f}")
    print()
    print("gwkey = the gateway with a virtual key (in-memory key store, budget and rpm/tpm/parallel limits)")
    for c in (1, 64):
        # Paired by round: each round ran both gateways back to back.
        diffs = [ms(k["p50"] - g["p50"]) for k, g in zip(runs("gwkey", c), runs("gateway", c))]
        print(f"virtual key added at c={c}: p50 {statistics.median(diffs):+.3f} ms "
              f"(per round: {', '.join(f'{d:+.3f}' for d in diffs)})")
    print()
    for t in ("bare", "gateway"):
        print(f"throughput {t}/direct at c=64: {med(t, 64, 'rps') / med('direct', 64, 'rps'):.2f} "
              f"({med(t, 64, 'rps'):.0f} vs {med('direct', 64, 'rps'):.0f} req/s)")
if bad:
    print(f"WARNING: non-200 answers in {', '.join(bad)}: numbers are not comparable")
    sys.exit(1)
PY
