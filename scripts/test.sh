#!/usr/bin/env bash
# The whole test suite: Python sandbox and emulator unit tests, lint, and every Rust test
# (unit tests and black-box tests that start the real server on real sockets).
# The black-box tests add TEST-NET addresses (203.0.113.x, 198.51.100.x, 192.0.2.5,
# 2001:db8::...) to the loopback interface to act as callers, and tests/deployment.rs runs
# nginx in network namespaces of its own; that needs root. HAProxy, nginx, dnsmasq,
# kubernetes-validate and the Docker tools are installed by scripts/test-tools.sh (Debian's
# packages, and pinned virtualenvs under .tools/).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$root"
./scripts/python-env.sh
./scripts/test-tools.sh

echo "== python_sandbox unit tests"
PYTHONPATH="$root/.python-packages:$root/python_sandbox" \
  "$python" -S -m unittest discover -s python_sandbox/tests -t python_sandbox
echo "== Odoo emulator unit tests"
"$python" -S -m unittest discover -s tests/odoo_emulator -t tests/odoo_emulator
echo "== companion addon unit tests (the parts that do not need Odoo)"
"$python" -S -m unittest discover -s odoo_addon/tests -t odoo_addon

echo "== cargo fmt / clippy"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

echo "== Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
