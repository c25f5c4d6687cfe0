#!/usr/bin/env bash
# Installs python_sandbox/requirements.txt into .python-packages/ for the interpreter that
# towerhook links against (PYO3_PYTHON in .cargo/config.toml). The embedded interpreter
# puts exactly that directory on sys.path and nothing else from site-packages, so what
# snippets can import does not depend on the machine's global packages.
# Idempotent: reinstalls only when requirements.txt changed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
target="$root/.python-packages"
requirements="$root/python_sandbox/requirements.txt"
stamp="$target/.requirements.sha256"

if [ ! -x "$python" ]; then
  echo "python-env: $python not found (set PYO3_PYTHON or edit .cargo/config.toml)" >&2
  exit 1
fi
want="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "python-env: installing $(basename "$requirements") into $target" >&2
rm -rf "$target"
"$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
  --target "$target" -r "$requirements"
echo "$want" > "$stamp"
