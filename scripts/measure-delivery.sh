#!/usr/bin/env bash
# Budgets of the delivery guarantees (README "Delivery guarantees"), on the release binary:
# - accept now, run later: latency of the 202 at a fixed 2,000 calls/s while the webhook's
#   code takes 1 s (the queue grows: one call a second runs);
# - the duplicate guard: a GET webhook whose delivery id is a query parameter, each call a
#   new id (oha --rand-regex-url), against the same webhook without the guard, at a fixed
#   rate; and repeats of one id (answered without running the code);
# - the machine's load before and after (other work may share the cores).
#   SECONDS_EACH (default 10), RATE (default 2000), PORT (default 18091), SYNC (the log
#   store's fsync: full, the default, or normal: no fsync per commit, which takes the disk
#   out of the figures when other work saturates it)
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
seconds="${SECONDS_EACH:-10}"
rate="${RATE:-2000}"
port="${PORT:-18091}"
sync="${SYNC:-full}"
base="http://127.0.0.1:$port/cetmix_tower_webhooks"
oha="${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}"

cargo build --release --locked --bin towerhook 2>&1 | tail -1
data="$(mktemp -d)"
definitions="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data" "$definitions"' EXIT
cat > "$definitions/bench.yaml" <<'YAML'
- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: 'result = {"allowed": True}'}
- {cetmix_tower_model: webhook, reference: slow_async, name: Slow async, authenticator_id: open,
   endpoint: bench/async-slow, mode: async, code: "time.sleep(1)\nresult = {'exit_code': 0}"}
- {cetmix_tower_model: webhook, reference: get_plain, name: GET plain, authenticator_id: open,
   endpoint: bench/get-plain, method: get, code: "result = {'exit_code': 0, 'message': 'ok'}"}
- {cetmix_tower_model: webhook, reference: get_dedup, name: GET dedup, authenticator_id: open,
   endpoint: bench/get-dedup, method: get, dedup_key: "json:id",
   code: "result = {'exit_code': 0, 'message': 'ok'}"}
YAML
pressure() { # CPU and disk pressure (Linux PSI): the share of time work waited for them
  echo "cpu $(head -1 /proc/pressure/cpu 2>/dev/null | cut -d' ' -f2-3); io $(head -1 /proc/pressure/io 2>/dev/null | cut -d' ' -f2-3)"
}
echo "log_store_sync = $sync; load before: $(uptime); $(pressure)"
RUST_LOG=warn TOWERHOOK_DATA_DIR="$data" TOWERHOOK_YAML_DIR="$definitions" \
  TOWERHOOK_LOG_STORE_SYNC="$sync" TOWERHOOK_LISTEN="127.0.0.1:$port" ./target/release/towerhook serve &
server=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.05; done

run() { # name, oha args...: a warm-up at the same rate (snippets compile, the worker pool
  # grows to what the scenario holds), then the measured run
  local name="$1"; shift
  "$oha" --no-tui -z 3s -c 50 -q "$rate" "$@" >/dev/null
  "$oha" --no-tui --output-format json -z "${seconds}s" -c 50 -q "$rate" --latency-correction \
    "$@" > "$data/$name.json"
}
run plain --rand-regex-url "$base/bench/get-plain\\?id=[a-z0-9]{20}"
run dedup_fresh --rand-regex-url "$base/bench/get-dedup\\?id=[a-z0-9]{20}"
run dedup_repeat "$base/bench/get-dedup?id=always-the-same"
# Last: the queue it fills keeps one call running until the end.
run async -m POST -T application/json -d '{"event": "bench"}' "$base/bench/async-slow"
ready=$(curl -s "http://127.0.0.1:$port/readyz")
echo "load after: $(uptime); $(pressure)"

"$python" - "$data" "$ready" <<'PY'
import json, sqlite3, sys
data, ready = sys.argv[1], json.loads(sys.argv[2])
print()
print("%-46s %8s %8s %8s %8s  %s" % ("scenario", "req/s", "p50 ms", "p99 ms", "max ms", "statuses"))
for name, label in [("async", "async, code 1 s, answer (202)"),
                    ("plain", "GET sync, no duplicate guard, new ids"),
                    ("dedup_fresh", "GET sync, duplicate guard, new ids"),
                    ("dedup_repeat", "GET sync, duplicate guard, one id repeated")]:
    d = json.load(open("%s/%s.json" % (data, name)))
    s, p = d["summary"], d["latencyPercentiles"]
    print("%-46s %8.0f %8.2f %8.2f %8.2f  %s" % (
        label, s["requestsPerSec"], p["p50"] * 1e3, p["p99"] * 1e3, s["slowest"] * 1e3,
        d["statusCodeDistribution"]))
db = sqlite3.connect("%s/towerhook.sqlite3" % data)
print()
print("queue after the async run: %s" % json.dumps(ready["queue"]))
print("rows: queued %d, seen ids %d" % (
    db.execute("select count(*) from delivery_queue").fetchone()[0],
    db.execute("select count(*) from delivery_seen").fetchone()[0]))
PY
