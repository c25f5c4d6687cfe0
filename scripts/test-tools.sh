#!/usr/bin/env bash
# Tools some tests need beyond Rust and the sandbox's Python packages; idempotent, installs
# only what is missing:
# - HAProxy, Debian's package: tests/replicas.rs starts it with deploy/haproxy.cfg in front
#   of three towerhook replicas.
# - kubernetes-validate (PyPI, pinned with its dependencies in
#   scripts/kubernetes-validate.txt), in its own virtualenv .tools/kubernetes-validate:
#   tests/kubernetes.rs checks deploy/kubernetes against the Kubernetes API schemas it
#   bundles, offline. (kubectl, which renders the kustomization, is on the machine image.)
set -euo pipefail
source "$(dirname "$0")/common.sh"

if ! command -v haproxy >/dev/null; then
  echo "test-tools: installing haproxy (Debian package)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
fi

venv="$root/.tools/kubernetes-validate"
requirements="$root/scripts/kubernetes-validate.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test-tools: installing $(basename "$requirements") into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-warn-script-location \
    --no-deps -r "$requirements"
  echo "$want" > "$stamp"
fi
