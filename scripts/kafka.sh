#!/usr/bin/env bash
# Install Apache Kafka 4.4 (KRaft broker + controller, from Maven Central) into the
# project-local, git-ignored .kafka/ and say how to start it.
#   scripts/kafka.sh path    install if missing; print the folder of its jars (tests read it as WEIR_KAFKA)
#   scripts/kafka.sh         install if missing; print how to start a single node by hand
# The jars come from scripts/kafka/pom.xml (org.apache.kafka:kafka_2.13 with its runtime
# dependencies and a log4j2 binding) by `mvn dependency:copy-dependencies`. A second run
# does nothing: .kafka/libs/.complete records the pom it was made from.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pom="$root/scripts/kafka/pom.xml"
libs="$root/.kafka/libs"

install() {
  local want
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [[ -f "$libs/.complete" && "$(cat "$libs/.complete")" == "$want" ]]; then return; fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn not found (Java 17 + Maven are needed)" >&2; exit 1; }
  rm -rf "$libs"
  mkdir -p "$libs"
  echo "kafka.sh: installing Apache Kafka from Maven Central into $libs" >&2
  mvn -q -B -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime >&2
  ls "$libs"/kafka_2.13-*.jar >/dev/null
  echo "$want" >"$libs/.complete"
}

install
case "${1:-}" in
  path) echo "$libs" ;;
  "")
    cat <<USAGE
Apache Kafka is in $libs. A single KRaft node by hand (tests do this themselves,
on free ports, see tests/common/broker.rs):
  cat > server.properties <<PROPS
  process.roles=broker,controller
  node.id=1
  listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
  advertised.listeners=PLAINTEXT://127.0.0.1:9092
  controller.listener.names=CONTROLLER
  controller.quorum.bootstrap.servers=127.0.0.1:9093
  log.dirs=/tmp/weir-kafka
  offsets.topic.replication.factor=1
  transaction.state.log.replication.factor=1
  transaction.state.log.min.isr=1
  group.initial.rebalance.delay.ms=0
  PROPS
  java -cp '$libs/*' kafka.tools.StorageTool format --standalone -t \$(java -cp '$libs/*' kafka.tools.StorageTool random-uuid) -c server.properties
  java -Xmx512m -cp '$libs/*' kafka.Kafka server.properties
USAGE
    ;;
  *) sed -n '2,8s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
