# Sourced by the other scripts: repository root and the Python towerhook links against.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYO3_PYTHON:-$(sed -n 's/^PYO3_PYTHON *= *"\(.*\)"/\1/p' "$root/.cargo/config.toml")}"
export PYO3_PYTHON="$python"
