#!/usr/bin/env bash
# Apache Kafka for the tests and for a local try, from Maven Central's jars (no download site, no Docker).
#   bash scripts/kafka.sh [fetch]      fetch the broker's jars once into the cache; print their folder
#   bash scripts/kafka.sh start [...]  fetch, then run a one-node KRaft broker on 127.0.0.1 until Ctrl-C
#                                      (python -m tests.kafka_broker; --help lists its options)
# The jars go to ${CLICKSTREAM_CACHE:-~/.cache/clickstream}/kafka-<version>/libs; a second run finds
# them there and prints the folder at once. Needs Java 17+ and Maven (mvn), which CI machines have.
# CLICKSTREAM_KAFKA_VERSION picks the broker (org.apache.kafka:kafka_2.13); 4.4.0 when unset.
set -euo pipefail

KAFKA_VERSION=${CLICKSTREAM_KAFKA_VERSION:-4.4.0}
# The broker logs through SLF4J 1.x; this binding sends it to the log4j2 that kafka_2.13 brings.
LOG4J_VERSION=2.25.5
CACHE=${CLICKSTREAM_CACHE:-$HOME/.cache/clickstream}
HOME_DIR=$CACHE/kafka-$KAFKA_VERSION
LIBS=$HOME_DIR/libs
ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { printf 'kafka: %s\n' "$*" >&2; }

require() {
  command -v "$1" >/dev/null || { log "needs $1 on PATH ($2)"; exit 1; }
}

write_pom() {  # the broker and its runtime needs; copy-dependencies resolves the rest
  cat >"$1/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>clickstream.local</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

fetch() {
  [ -f "$LIBS/.complete" ] && return
  require java "Java 17 or newer runs the broker"
  require mvn "Maven fetches the broker's jars from Maven Central"
  mkdir -p "$HOME_DIR"
  # Built beside the final folder and renamed into place: a run cut short, or two runs at once,
  # never leave a half-filled libs folder behind that looks complete.
  work=$(mktemp -d "$HOME_DIR/fetch.XXXXXX")  # global: the EXIT trap runs after fetch returns
  trap 'rm -rf "$work"' EXIT
  write_pom "$work"
  log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its dependencies from Maven Central"
  if ! mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1; then
    cat "$work/mvn.log" >&2
    log "mvn could not fetch the broker's jars (see above)"
    exit 1
  fi
  touch "$work/libs/.complete"
  # A libs folder without the mark was not made by this script (renames are whole): replace it.
  if [ -d "$LIBS" ] && [ ! -f "$LIBS/.complete" ]; then rm -rf "$LIBS"; fi
  mv -T "$work/libs" "$LIBS" 2>/dev/null || [ -f "$LIBS/.complete" ]  # another run got there first
  log "$(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

python_bin() {  # $PYTHON, else the project's venv: the launcher's readiness check uses confluent-kafka
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"
  elif [ -x "$ROOT/.venv/bin/python" ]; then echo "$ROOT/.venv/bin/python"
  else echo python3; fi
}

command=${1:-fetch}
case "$command" in
  fetch) fetch; echo "$LIBS" ;;
  start)
    shift
    fetch
    cd "$ROOT"
    exec "$(python_bin)" -m tests.kafka_broker --libs "$LIBS" "$@"
    ;;
  *) log "unknown command '$command' (fetch, start)"; exit 2 ;;
esac
