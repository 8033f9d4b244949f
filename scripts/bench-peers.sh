#!/usr/bin/env bash
# Build the Java peers of `make bench` (Kafka Streams 4.4 and Flink 2.2, sources and poms in
# tests/bench/peers/) into the git-ignored target/bench/peers/<peer>/:
#   lib/       runtime jars (mvn dependency:copy-dependencies of tests/bench/peers/<peer>/pom.xml)
#   classes/   tests/bench/peers/common/*.java + tests/bench/peers/<peer>/src/*.java (javac)
#   jvm.args   the java command's arguments up to the main class: `java @jvm.args --job=… …`
#   scripts/bench-peers.sh [path]   build what is missing or out of date; with `path`, print the folder
# A second run does nothing: <peer>/.complete holds a hash of the sources, poms and this script.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/bench/peers"
out="$root/target/bench/peers"

for tool in mvn javac java; do
  command -v "$tool" >/dev/null || { echo "bench-peers.sh: $tool not found (Java 17 + Maven are needed)" >&2; exit 1; }
done

# Flink's own launch scripts open these JDK packages to its reflection (Java 17).
flink_opens="-XX:+IgnoreUnrecognizedVMOptions
--add-exports=java.base/sun.net.util=ALL-UNNAMED
--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
--add-opens=java.base/java.lang=ALL-UNNAMED
--add-opens=java.base/java.net=ALL-UNNAMED
--add-opens=java.base/java.io=ALL-UNNAMED
--add-opens=java.base/java.nio=ALL-UNNAMED
--add-opens=java.base/sun.nio.ch=ALL-UNNAMED
--add-opens=java.base/java.lang.reflect=ALL-UNNAMED
--add-opens=java.base/java.text=ALL-UNNAMED
--add-opens=java.base/java.time=ALL-UNNAMED
--add-opens=java.base/java.util=ALL-UNNAMED
--add-opens=java.base/java.util.concurrent=ALL-UNNAMED
--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED"

build() {
  local peer="$1" main="$2" opts="$3" d="$out/$1" want
  want="$(cat "$0" "$src/$peer/pom.xml" "$src"/common/*.java "$src/$peer"/src/*.java | sha256sum | cut -d' ' -f1)"
  if [[ -f "$d/.complete" && "$(cat "$d/.complete")" == "$want" ]]; then return; fi
  echo "bench-peers.sh: building the $peer peer into $d" >&2
  rm -rf "$d"
  mkdir -p "$d/lib" "$d/classes"
  mvn -q -B -Dstyle.color=never -f "$src/$peer/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$d/lib" -DincludeScope=runtime >&2
  javac -nowarn -encoding UTF-8 -d "$d/classes" -cp "$d/lib/*" \
    "$src"/common/*.java "$src/$peer"/src/*.java >&2
  cat >"$d/log4j2.properties" <<LOG
appender.err.type=Console
appender.err.name=ERR
appender.err.target=SYSTEM_ERR
appender.err.layout.type=PatternLayout
appender.err.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.err.ref=ERR
# Kafka Streams warns once per record dropped as late ("Skipping record for expired window"):
# counted in the peer's report line instead (weir counts them in a metric, too).
logger.late.name=org.apache.kafka.streams.kstream.internals
logger.late.level=ERROR
LOG
  {
    [[ -n "$opts" ]] && echo "$opts"
    echo "-Dlog4j2.configurationFile=$d/log4j2.properties"
    echo "-cp"
    echo "$d/classes:$d/lib/*"
    echo "$main"
  } >"$d/jvm.args"
  echo "$want" >"$d/.complete"
}

build streams weir.bench.StreamsPeer ""
build flink weir.bench.FlinkPeer "$flink_opens"
if [[ "${1:-}" == path ]]; then echo "$out"; fi
