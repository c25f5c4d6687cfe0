#!/usr/bin/env bash
# Throughput of the trivial webhook (bench/trivial, demo definitions) straight to one
# towerhook, and through HAProxy with deploy/haproxy.cfg in front of 1 and of 3 replicas
# on the same machine (each replica: MEASURE_PYTHON_WORKERS snippet workers, default 2).
# Closed loop, 50 keep-alive connections to the proxy, MEASURE_SECONDS (default 10) each.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
seconds="${MEASURE_SECONDS:-10}"
./scripts/python-env.sh
./scripts/test-tools.sh
command -v oha >/dev/null || cargo install oha --locked --version 1.16.0
cargo build --release --locked --bin towerhook 2>&1 | tail -1

work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for n in 1 2 3; do
  mkdir "$work/$n"
  RUST_LOG=warn TOWERHOOK_DATA_DIR="$work/$n" TOWERHOOK_LISTEN="127.0.0.1:1810$n" \
    TOWERHOOK_TRUSTED_PROXIES=127.0.0.1 TOWERHOOK_SHUTDOWN_DELAY_SECS=5 \
    TOWERHOOK_PYTHON_WORKERS="${MEASURE_PYTHON_WORKERS:-2}" ./target/release/towerhook serve &
  pids+=($!)
done
for n in 1 2 3; do until curl -sf "http://127.0.0.1:1810$n/readyz" >/dev/null; do sleep 0.05; done; done

run() { # label, URL
  oha --no-tui -z "${seconds}s" -c 50 -m POST -d '{}' --output-format json "$2" > "$work/out.json"
  "$python" - "$1" "$work/out.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
s, p = d["summary"], d["latencyPercentiles"]
print("%-34s %7.0f req/s  p50 %5.1f ms  p99 %6.1f ms  %s" % (
    sys.argv[1], s["requestsPerSec"], p["p50"] * 1e3, p["p99"] * 1e3, d["statusCodeDistribution"]))
PY
}
proxy() { # replicas for server 2 and 3 (the same as server 1 when only one is wanted)
  PROXY_BIND=127.0.0.1:18100 ODOO_ADDR=127.0.0.1:9 ODOO_GEVENT_ADDR=127.0.0.1:9 \
    TOWERHOOK_1_ADDR=127.0.0.1:18101 TOWERHOOK_2_ADDR="$1" TOWERHOOK_3_ADDR="$2" \
    haproxy -db -q -f deploy/haproxy.cfg >/dev/null 2>&1 &
  haproxy_pid=$!
  pids+=("$haproxy_pid")
  sleep 3   # health checks: rise 2 x inter 1 s
}
url=/cetmix_tower_webhooks/bench/trivial
run "one replica, direct" "http://127.0.0.1:18101$url"
proxy 127.0.0.1:18101 127.0.0.1:18101
run "HAProxy, one replica" "http://127.0.0.1:18100$url"
kill "$haproxy_pid"; wait "$haproxy_pid" 2>/dev/null || true
proxy 127.0.0.1:18102 127.0.0.1:18103
run "HAProxy, three replicas" "http://127.0.0.1:18100$url"
