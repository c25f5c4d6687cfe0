#!/usr/bin/env bash
# Benchmark: requests/s and latency of the trivial POST webhook (allow-all authenticator,
# one-line code) with keep-alive clients, closed loop and at a fixed 2,000 requests/s, and
# of a webhook whose authenticator verifies an HMAC-SHA256 signature of the body; plus
# start-up time and idle memory. Budgets: DESIGN.md. Every call is logged with a
# synchronous SQLite commit, as in production.
#   BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 50), BENCH_PORT (default 18090)
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
seconds="${BENCH_SECONDS:-10}"
connections="${BENCH_CONNECTIONS:-50}"
port="${BENCH_PORT:-18090}"
base="http://127.0.0.1:$port"

./scripts/python-env.sh
command -v oha >/dev/null || cargo install oha --locked --version 1.16.0
cargo build --release --locked --bin towerhook 2>&1 | tail -1

data="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
started=$(date +%s%N)
RUST_LOG=warn TOWERHOOK_DATA_DIR="$data" TOWERHOOK_LISTEN="127.0.0.1:$port" \
  ./target/release/towerhook serve &
server=$!
until curl -sf "$base/readyz" >/dev/null; do sleep 0.01; done
ready_ms=$(( ($(date +%s%N) - started) / 1000000 ))
# The server and its snippet workers together (resident set; shared pages count in each).
rss_kb() { ps -o rss= -p "$(echo "$server" $(pgrep -P "$server") | tr ' ' ,)" | awk '{s += $1} END {print s}'; }
sleep 1 # the workers start after readiness is reported
idle_rss_kb=$(rss_kb)

body='{"ref": "refs/heads/main", "event": "bench"}'
# The demo secret of demo/secrets.yaml signs the body, as GitHub would.
signature=$("$python" -c 'import hashlib, hmac, sys
print("sha256=" + hmac.new(b"demo-webhook-secret", sys.argv[1].encode(), hashlib.sha256).hexdigest())' "$body")
run() { # name, extra oha args...
  local name="$1"; shift
  oha --no-tui --output-format json -z "${seconds}s" -c "$connections" -m POST \
    -T application/json -d "$body" "$@" > "$data/$name.json"
}
oha --no-tui -z 2s -c "$connections" -m POST -d '{}' "$base/cetmix_tower_webhooks/bench/trivial" >/dev/null
run trivial "$base/cetmix_tower_webhooks/bench/trivial"
run trivial_2000 -q 2000 "$base/cetmix_tower_webhooks/bench/trivial"
run hmac -H "X-Hub-Signature-256: $signature" "$base/cetmix_tower_webhooks/bench/hmac"
run verify -H "X-Hub-Signature-256: $signature" "$base/cetmix_tower_webhooks/bench/verify"
busy_rss_kb=$(rss_kb)

"$python" - "$data" "$ready_ms" "$idle_rss_kb" "$busy_rss_kb" <<'PY'
import json, sqlite3, sys
data, ready_ms, idle_rss, busy_rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print()
print("%-34s %10s %9s %9s %9s  %s" % ("scenario", "req/s", "p50 ms", "p99 ms", "max ms", "statuses"))
for name, label in [("trivial", "trivial POST, closed loop"),
                    ("trivial_2000", "trivial POST, fixed 2000 req/s"),
                    ("hmac", "HMAC-SHA256 verified POST"),
                    ("verify", "same, with verify.github")]:
    d = json.load(open("%s/%s.json" % (data, name)))
    s, p = d["summary"], d["latencyPercentiles"]
    print("%-34s %10.0f %9.2f %9.2f %9.2f  %s" % (
        label, s["requestsPerSec"], p["p50"] * 1e3, p["p99"] * 1e3, s["slowest"] * 1e3,
        d["statusCodeDistribution"]))
logged = sqlite3.connect("%s/towerhook.sqlite3" % data).execute(
    "select count(*) from webhook_log").fetchone()[0]
print()
print("start to ready: %d ms; RSS of the server and its workers: idle %.1f MB, after load %.1f MB; "
      "log records stored: %d"
      % (ready_ms, idle_rss / 1024, busy_rss / 1024, logged))
PY
