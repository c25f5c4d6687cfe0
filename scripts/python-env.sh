#!/usr/bin/env bash
# Installs python_sandbox/requirements.txt into .python-packages/ for the interpreter that
# towerhook links against (PYO3_PYTHON, or as scripts/common.sh finds it). The embedded interpreter
# puts exactly that directory on sys.path and nothing else from site-packages, so what
# snippets can import does not depend on the machine's global packages.
# Idempotent: reinstalls only when requirements.txt changed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
target="$root/.python-packages"
requirements="$root/python_sandbox/requirements.txt"
stamp="$target/.requirements.sha256"

if [ ! -x "$python" ]; then
  echo "python-env: $python not found (set PYO3_PYTHON to a CPython 3.11 executable)" >&2
  exit 1
fi
# Snippet workers run as an unprivileged user (worker_user, "nobody") when towerhook runs
# as root: they must reach the interpreter's files. A pyenv under /root is not reachable
# by others; let them through its parent directories (traverse only, no listing).
if [ "$(id -u)" = 0 ]; then
  for dir in "$("$python" -c 'import sys; print(sys.base_prefix)')" "$root"; do
    while [ "$dir" != / ]; do
      if [ -d "$dir" ] && [ "$(( 0$(stat -c %a "$dir") & 1 ))" = 0 ]; then
        echo "python-env: letting snippet workers through $dir (chmod o+x)" >&2
        chmod o+x "$dir"
      fi
      dir="$(dirname "$dir")"
    done
  done
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
