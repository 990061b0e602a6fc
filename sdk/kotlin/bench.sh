#!/usr/bin/env bash
# Kotlin SDK bench: events/s one client hands to a loopback MockWebServer, bytes per event.
set -euo pipefail
cd "$(dirname "$0")"
mvn -q -B -Dstyle.color=never test-compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt -Dmdep.includeScope=test
exec java -cp "target/classes:target/test-classes:$(cat target/classpath.txt)" dev.adc.sdk.BenchKt
