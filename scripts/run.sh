#!/usr/bin/env bash
# Builds towerhook and serves the demo webhooks (YAML source, local log store in ./data)
# on http://127.0.0.1:8080. Extra arguments go to `towerhook serve`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
./scripts/python-env.sh
exec cargo run --release --locked --bin towerhook -- serve "$@"
