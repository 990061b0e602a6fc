#!/usr/bin/env bash
# Puts Apache Kafka's broker jars (pom.xml beside this file) into .cache/kafka/lib, from Maven Central
# through Maven. Skipped when the jars are already there. Needs Java 17+ and Maven.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
lib="$root/.cache/kafka/lib"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"

if compgen -G "$lib/kafka_2.13-$version.jar" >/dev/null; then
  exit 0
fi
command -v java >/dev/null || { echo "ensure.sh: java not found (Java 17+ is needed)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "ensure.sh: mvn not found (apt-get install maven)" >&2; exit 1; }
rm -rf "$lib.tmp"
mkdir -p "$root/.cache/kafka"
if ! mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$lib.tmp" -DincludeScope=runtime >"$root/.cache/kafka/mvn.log" 2>&1; then
  cat "$root/.cache/kafka/mvn.log" >&2
  exit 1
fi
rm -rf "$lib"
mv "$lib.tmp" "$lib"
echo "ensure.sh: Kafka $version jars in .cache/kafka/lib ($(ls "$lib" | wc -l) files)"
