# Sourced by scripts/nurture and scripts/test: make sure .venv exists and holds
# this checkout's package and its dependencies, reinstalling only when
# pyproject.toml changed. A fresh clone on a fresh machine needs nothing else.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NURTURE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${1:-}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "nurture needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip >&2
fi
stamp="$VENV/.nurture-installed$EXTRAS"
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing nurture${EXTRAS} into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$ROOT$EXTRAS" >&2
  echo "$want" > "$stamp"
fi
