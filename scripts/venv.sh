#!/usr/bin/env bash
# Create/refresh the project-local virtualenv .venv/ from scripts/requirements.txt.
# Idempotent: does nothing when .venv/.stamp is newer than requirements.txt.
# Override the interpreter with PYTHON=/path/to/python3 (default: python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
req="$root/scripts/requirements.txt"
stamp="$venv/.stamp"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$stamp" -nt "$req" ]]; then
  exit 0
fi

echo "venv.sh: setting up $venv" >&2
[[ -x "$venv/bin/python" ]] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
touch "$stamp"
echo "venv.sh: done" >&2
