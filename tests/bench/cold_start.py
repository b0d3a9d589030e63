#!/usr/bin/env python3
"""Cold start of the gateway binary: process start -> first routed chat completion.

Usage: python3 tests/bench/cold_start.py BINARY [CONFIG] [RUNS]
       python3 tests/bench/cold_start.py BINARY --ml [RUNS]

With --ml it measures three configurations in turn, each RUNS times:
  - mock:       one mock_response deployment, simple-shuffle (no ML);
  - knn-static: llmrouter-knn with the committed router models/routers-static/knn.json on the
                static embedder (static-minilm-pca128 from `models/fetch_models.sh --static`,
                found in $ROUTEIQ_MODEL_DIR, default ~/.cache/routeiq/models): the artifact is
                read and verified, the 4 MB embedding table loaded and the centroid tiers
                embedded before the first request;
  - centroid:   an llmrouter-knn strategy with no router file, so centroid routing (the
                built-in seed prompts embedded with the hashed n-gram embedder) decides.
The nine deployments are those of examples/ml-routing.yaml (mock_response). Each ML run checks
the first response's x-routeiq-decision-method (router, centroid) so a silently degraded
start is not measured as an ML one.

Starts BINARY (a release build) RUNS times with CONFIG (default: a mock_response deployment),
polls the chat endpoint as fast as possible, and prints p50/p90/max of the time from spawn to
the first 200, the resident memory after that request, and the binary's size. This is the
figure that matters for AWS Lambda cold starts (config, clients and routers are built before
the first request is served). A benchmark, not a test: it prints figures, it does not judge.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

DEFAULT_CONFIG = """
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: "cold start probe"
"""


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def ml_config(router_settings: str) -> str:
    """examples/ml-routing.yaml's deployments with these router settings."""
    with open(os.path.join(REPO, "examples", "ml-routing.yaml")) as f:
        deployments = f.read().split("router_settings:")[0]
    return deployments + "router_settings:\n" + router_settings


SCENARIOS = {
    "mock": (DEFAULT_CONFIG, "gpt-4o-mini", None),
    "knn-static": (
        ml_config(
            "  routing_strategy: llmrouter-knn\n"
            "  routing_strategy_args:\n"
            f"    model_path: {os.path.join(REPO, 'models', 'routers-static', 'knn.json')}\n"
        ),
        "auto",
        "router",
    ),
    "centroid": (
        ml_config("  routing_strategy: llmrouter-knn\n"),
        "auto",
        "centroid",
    ),
}


def one_run(
    binary: str, config_path: str, model: str = "gpt-4o-mini", method: str | None = None
) -> tuple[float, int]:
    port = free_port()
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Solve 12*(3+4)"}]}
    ).encode()
    env = dict(os.environ, RUST_LOG="warn")
    env.setdefault(
        "ROUTEIQ_MODEL_DIR", os.path.join(os.path.expanduser("~"), ".cache", "routeiq", "models")
    )
    start = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "--config", config_path, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = start + 10
        while time.perf_counter() < deadline:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    data=body,
                    headers={"content-type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=1) as resp:
                    if resp.status == 200:
                        elapsed = time.perf_counter() - start
                        got = resp.headers.get("x-routeiq-decision-method")
                        if method is not None and got != method:
                            raise RuntimeError(
                                f"expected decision method {method!r}, got {got!r}"
                            )
                        return elapsed, rss_kb(proc.pid)
            except OSError:
                time.sleep(0.0005)
        raise RuntimeError("no answer within 10 s")
    finally:
        proc.terminate()
        proc.wait()


def measure(binary: str, text: str, runs: int, label: str, model: str, method: str | None) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        config_path = f.name
    try:
        results = [one_run(binary, config_path, model, method) for _ in range(runs)]
    finally:
        os.unlink(config_path)
    times = sorted(r[0] * 1000 for r in results)
    rss = [r[1] for r in results]
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    print(f"cold start [{label}] (spawn -> first routed 200), {runs} runs:")
    print(f"  p50 {statistics.median(times):.1f} ms   p90 {p90:.1f} ms   max {times[-1]:.1f} ms")
    print(f"  RSS after the first request: {statistics.median(rss) / 1024:.1f} MiB")


def main() -> int:
    binary = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "--ml":
        runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
        for name, (text, model, method) in SCENARIOS.items():
            measure(binary, text, runs, name, model, method)
    else:
        config = sys.argv[2] if len(sys.argv) > 2 else None
        runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
        text = open(config).read() if config else DEFAULT_CONFIG
        measure(binary, text, runs, config or "mock", "gpt-4o-mini", None)
    print(f"  binary: {os.path.getsize(binary) / 1e6:.1f} MB ({binary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
