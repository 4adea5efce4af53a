# Sourced by scripts/demo and scripts/test: create or reuse .venv with the project installed,
# at the versions pinned in requirements/constraints.txt (refreshed by scripts/lock).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "tinysync needs Python 3.11 or newer" >&2; exit 1; }
STAMP=".venv/.installed-$(cat pyproject.toml requirements/constraints.txt | cksum | cut -d' ' -f1)-${1:-base}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$STAMP" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".${2:-}"
  rm -f .venv/.installed-*-"${1:-base}"
  touch "$STAMP"
fi
