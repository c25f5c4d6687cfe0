#!/usr/bin/env bash
# What one towerhook replica costs, for sizing replicas (README, "Several replicas"):
# memory of the server and its snippet workers (RSS summed, and PSS: shared pages counted
# once) idle and under load, the CPU time one call takes, and the closed-loop throughput,
# on the trivial webhook of the demo definitions (bench/trivial), every call logged with
# a synchronous SQLite commit.
#   MEASURE_WORKERS (HTTP threads, default 2), MEASURE_PYTHON_WORKERS (default 2),
#   MEASURE_SECONDS (default 10), MEASURE_PORT (default 18091)
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
seconds="${MEASURE_SECONDS:-10}"
port="${MEASURE_PORT:-18091}"
base="http://127.0.0.1:$port"
url="$base/cetmix_tower_webhooks/bench/trivial"

./scripts/python-env.sh
command -v oha >/dev/null || cargo install oha --locked --version 1.16.0
cargo build --release --locked --bin towerhook 2>&1 | tail -1

data="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
RUST_LOG=warn TOWERHOOK_DATA_DIR="$data" TOWERHOOK_LISTEN="127.0.0.1:$port" \
  TOWERHOOK_WORKERS="${MEASURE_WORKERS:-2}" TOWERHOOK_PYTHON_WORKERS="${MEASURE_PYTHON_WORKERS:-2}" \
  ./target/release/towerhook serve &
server=$!
until curl -sf "$base/readyz" >/dev/null; do sleep 0.05; done
# One call through the pipeline, so that the workers have loaded the snippets.
curl -sf -X POST "$url" -d '{}' >/dev/null

# Memory (kB) and CPU ticks of the server and its worker processes.
sample() {
  "$python" - "$server" <<'PY'
import os, sys
server = int(sys.argv[1])
def parent(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None  # gone meanwhile
pids = [server] + [int(p) for p in os.listdir("/proc") if p.isdigit() and parent(p) == server]
rss = pss = ticks = 0
for pid in pids:
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Rss:"):
            rss += int(line.split()[1])
        elif line.startswith("Pss:"):
            pss += int(line.split()[1])
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks += int(fields[11]) + int(fields[12])
print(len(pids), rss, pss, ticks)
PY
}
read -r procs idle_rss idle_pss _ < <(sample)

# CPU per call at a fixed, modest rate (the load generator's own CPU is not counted).
read -r _ _ _ before < <(sample)
oha --no-tui -z "${seconds}s" -q 500 -c 10 -m POST -d '{}' "$url" --output-format json > "$data/fixed.json"
read -r _ _ _ after < <(sample)

# Closed loop: as fast as one replica goes; memory sampled at the end of the run.
oha --no-tui -z "${seconds}s" -c 50 -m POST -d '{}' "$url" --output-format json > "$data/closed.json" &
load=$!
sleep "$((seconds - 1))"
read -r _ busy_rss busy_pss _ < <(sample)
wait "$load"

"$python" - "$data" "$procs" "$idle_rss" "$idle_pss" "$busy_rss" "$busy_pss" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
data, procs, idle_rss, idle_pss, busy_rss, busy_pss, before, after, hz = sys.argv[1:]
fixed = json.load(open(f"{data}/fixed.json"))
closed = json.load(open(f"{data}/closed.json"))
calls = sum(fixed["statusCodeDistribution"].values())
cpu_ms = (int(after) - int(before)) * 1000 / int(hz)
print(f"processes (server + snippet workers): {procs}")
print(f"memory idle:       RSS {int(idle_rss)/1024:.0f} MB, PSS {int(idle_pss)/1024:.0f} MB")
print(f"memory under load: RSS {int(busy_rss)/1024:.0f} MB, PSS {int(busy_pss)/1024:.0f} MB")
print(f"fixed 500 req/s: {calls} calls, statuses {fixed['statusCodeDistribution']}, "
      f"CPU {cpu_ms:.0f} ms = {cpu_ms / calls:.3f} ms per call")
s, p = closed["summary"], closed["latencyPercentiles"]
print(f"closed loop, 50 connections: {s['requestsPerSec']:.0f} req/s, p50 {p['p50']*1e3:.1f} ms, "
      f"p99 {p['p99']*1e3:.1f} ms, statuses {closed['statusCodeDistribution']}")
PY
