#!/usr/bin/env bash
# Starts a single-node KRaft Kafka broker on 127.0.0.1 for tests and CI, from the jars ensure.sh
# fetched. Data lives under .cache/kafka/data and is wiped on every start (a test broker).
# Prints `KAFKA_BROKERS=127.0.0.1:<port>` once the broker accepts connections; `eval "$(start.sh)"`
# or `export $(scripts/kafka/start.sh | tail -1)` to use it. Stop it with stop.sh.
#
# Env: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093), KAFKA_HEAP (512m), KAFKA_START_TIMEOUT (60 s).
# Without KAFKA_PORT, a default port another process holds (a broker of another checkout, say) moves
# the broker to the next free pair (19094/19095, ...); the printed KAFKA_BROKERS names it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="$root/.cache/kafka"
port="${KAFKA_PORT:-19092}"
ctl_port="${KAFKA_CONTROLLER_PORT:-19093}"
heap="${KAFKA_HEAP:-512m}"
timeout_s="${KAFKA_START_TIMEOUT:-60}"
pidfile="$cache/kafka.pid"
portfile="$cache/kafka.port"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  running_port="$(cat "$portfile" 2>/dev/null || echo "$port")"
  if port_open "$running_port"; then
    echo "start.sh: broker already running (pid $(cat "$pidfile"))" >&2
    echo "KAFKA_BROKERS=127.0.0.1:$running_port"
    exit 0
  fi
fi
if [[ -z "${KAFKA_PORT:-}" && -z "${KAFKA_CONTROLLER_PORT:-}" ]]; then
  while port_open "$port" || port_open "$ctl_port"; do
    echo "start.sh: 127.0.0.1:$port or :$ctl_port is taken by another process; trying the next pair" >&2
    port=$((port + 2))
    ctl_port=$((ctl_port + 2))
    if (( port > 19192 )); then
      echo "start.sh: no free port pair in 19092-19193" >&2
      exit 1
    fi
  done
fi
if port_open "$port"; then
  echo "start.sh: 127.0.0.1:$port is taken by another process" >&2
  exit 1
fi

"$here/ensure.sh" >&2
rm -rf "$cache/data" "$cache/config"
mkdir -p "$cache/data" "$cache/config"
props="$cache/config/server.properties"
cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$cache/data
num.partitions=1
# Topics are created explicitly (Log.ensureTopic), as in the embedded log: a typo fails, not forks.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# A single test broker: no reason to wait for more members before the first rebalance.
group.initial.rebalance.delay.ms=0
# Kafka 4.x's 5 ms default delays every offset commit (a commit-heavy consumer ran 7x slower).
group.coordinator.append.linger.ms=0
PROPS
cat >"$cache/config/log4j2.properties" <<'LOG'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
LOG

cp_arg="$cache/lib/*"
jvm=(-Xmx"$heap" -Xms128m -Djava.awt.headless=true -Dlog4j2.configurationFile="$cache/config/log4j2.properties")
cluster_id="$(java -cp "$cp_arg" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
java "${jvm[@]}" -cp "$cp_arg" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >"$cache/format.log" 2>&1 || {
  cat "$cache/format.log" >&2
  exit 1
}

nohup java "${jvm[@]}" -cp "$cp_arg" kafka.Kafka "$props" >"$cache/broker.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"
echo "$port" >"$portfile"

deadline=$((SECONDS + timeout_s))
until grep -q "Kafka Server started" "$cache/broker.log" 2>/dev/null && port_open "$port"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start.sh: broker exited during start; .cache/kafka/broker.log:" >&2
    tail -n 40 "$cache/broker.log" >&2
    rm -f "$pidfile"
    exit 1
  fi
  if ((SECONDS > deadline)); then
    echo "start.sh: broker not ready after ${timeout_s}s; stopping it" >&2
    kill "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    exit 1
  fi
  sleep 0.2
done
echo "start.sh: Kafka broker ready on 127.0.0.1:$port (pid $pid, log .cache/kafka/broker.log)" >&2
echo "KAFKA_BROKERS=127.0.0.1:$port"
