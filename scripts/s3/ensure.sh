#!/usr/bin/env bash
# Installs an S3-compatible test server (moto's standalone server, from PyPI) into .cache/s3/venv,
# for the Iceberg-on-S3 sink test. MinIO, the compose stack's object store, is not distributed
# through a package registry this project's CI reaches; moto speaks the same S3 API on loopback.
# Prints the server binary's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.cache/s3/venv"
if [[ ! -x "$venv/bin/moto_server" ]]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/s3/requirements.txt" >&2
fi
echo "$venv/bin/moto_server"
