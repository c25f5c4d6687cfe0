# Sourced by the other scripts: repository root and the Python towerhook links against.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The interpreter pyo3 builds against (build.rs bakes its library directory into the
# binary's RUNPATH, so that this one is loaded at run time, not another libpython of the
# machine). PYO3_PYTHON wins; otherwise the first CPython 3.11 on PATH (pyenv's shim
# resolves to its real executable), as a plain `cargo build` would find it.
find_python() {
  local candidate found
  for candidate in python3.11 python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    found="$("$candidate" -c 'import sys
if sys.version_info[:2] == (3, 11): print(sys.executable)' 2>/dev/null)" || continue
    if [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
  done
  return 1
}

if [ -z "${PYO3_PYTHON:-}" ]; then
  if ! PYO3_PYTHON="$(find_python)"; then
    echo "towerhook needs CPython 3.11 with its shared library: none on PATH." >&2
    echo "Install it (Debian: apt-get install python3.11 python3.11-dev python3.11-venv," >&2
    echo "or pyenv install 3.11 with --enable-shared) or set PYO3_PYTHON to its executable." >&2
    exit 1
  fi
fi
python="$PYO3_PYTHON"
export PYO3_PYTHON
