#!/usr/bin/env bash
# Installs chDB at the ClickHouse version of the compose stack's server (PyPI's chdb-core, versioned
# by ClickHouse release) into .cache/clickhouse/venv, for the test that runs core's SQL on that
# version. Prints the venv's python.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.cache/clickhouse/venv"
stamp="$venv/.requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$root/scripts/clickhouse/requirements.txt" "$stamp"; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/clickhouse/requirements.txt" >&2
  cp "$root/scripts/clickhouse/requirements.txt" "$stamp"
fi
echo "$venv/bin/python"
