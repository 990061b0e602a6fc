#!/usr/bin/env bash
# Installs pinned pyiceberg (with pyarrow and SQLAlchemy for its SQLite catalog) into
# .cache/iceberg/venv, for the tests that read the raw-event lake as a data engineer would.
# Reinstalls when requirements.txt changes. Prints the venv's python.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.cache/iceberg/venv"
reqs="$root/scripts/iceberg/requirements.txt"
stamp="$venv/.installed-$(sha256sum "$reqs" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --require-virtualenv -r "$reqs" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
