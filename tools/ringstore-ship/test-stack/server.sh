#!/usr/bin/env bash
# Starts, stops or restarts the test stack's server: SeaweedFS `weed mini`
# (S3 + Iceberg REST catalog) bound to 127.0.0.1 only, on free loopback ports
# chosen at the first start and kept across restarts.
#
#   server.sh start|stop|restart|env [STATE_DIR VENV]
#
# STATE_DIR holds the server's data, its log, pid and ports.env; `env` prints
# the variables the tests read. Without STATE_DIR and VENV, they come from
# RINGSTORE_SHIP_STACK_STATE and RINGSTORE_SHIP_STACK_VENV.
set -euo pipefail
cmd=$1
state=${2:-${RINGSTORE_SHIP_STACK_STATE:?}}
venv=${3:-${RINGSTORE_SHIP_STACK_VENV:?}}
mkdir -p "$state"
access_key=ringstore-ship-test
secret_key=ringstore-ship-test-secret

pick_ports() {
  # Six HTTP ports whose gRPC twin (+10000) is free too.
  "$venv/bin/python" - <<'PY' >"$state/ports.env"
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
names = ["MASTER", "VOLUME", "FILER", "S3", "ICEBERG", "ADMIN"]
chosen = set()
for n in names:
    while True:
        p = random.randint(20000, 39999)
        if p not in chosen and p + 10000 not in chosen and free(p) and free(p + 10000):
            chosen.update({p, p + 10000}); print(f"PORT_{n}={p}"); break
PY
}

start() {
  [[ -f "$state/ports.env" ]] || pick_ports
  # shellcheck disable=SC1091
  source "$state/ports.env"
  mkdir -p "$state/data"
  (cd "$state" && AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key \
    exec "$venv/bin/weed" mini -dir="$state/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.port="$PORT_MASTER" -volume.port="$PORT_VOLUME" -filer.port="$PORT_FILER" \
      -s3.port="$PORT_S3" -s3.port.iceberg="$PORT_ICEBERG" -s3.port.lance=0 \
      -admin.port="$PORT_ADMIN" -admin.ui=false -webdav=false -master.telemetry=false \
      -filer.localSocket="$state/filer.sock" -s3.localSocket="$state/s3.sock" \
      -tableBucket=ringstore >>"$state/server.log" 2>&1) &
  echo $! >"$state/pid"
  for _ in $(seq 1 120); do
    # Up when a token is issued and the table bucket (the catalog's
    # warehouse) exists; weed creates the bucket after it starts serving.
    local token
    token=$(curl -fsS -X POST "http://127.0.0.1:$PORT_ICEBERG/v1/oauth/tokens" \
      -d "grant_type=client_credentials&client_id=$access_key&client_secret=$secret_key" 2>/dev/null |
      "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' 2>/dev/null) || token=
    if [[ -n $token ]] && curl -fsS -o /dev/null -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$PORT_ICEBERG/v1/ringstore/namespaces" 2>/dev/null; then
      echo "server.sh: weed mini up (pid $(cat "$state/pid")), catalog http://127.0.0.1:$PORT_ICEBERG, S3 http://127.0.0.1:$PORT_S3" >&2
      return 0
    fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      echo "server.sh: weed mini exited; its log:" >&2; tail -30 "$state/server.log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "server.sh: weed mini did not answer within 60 s; its log:" >&2
  tail -30 "$state/server.log" >&2
  return 1
}

stop() {
  [[ -f "$state/pid" ]] || return 0
  local pid; pid=$(cat "$state/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$state/pid"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  env)
    # shellcheck disable=SC1091
    source "$state/ports.env"
    echo "RINGSTORE_SHIP_TEST_CATALOG=http://127.0.0.1:$PORT_ICEBERG"
    echo "RINGSTORE_SHIP_TEST_WAREHOUSE=s3://ringstore"
    echo "RINGSTORE_SHIP_TEST_S3=http://127.0.0.1:$PORT_S3"
    echo "AWS_ACCESS_KEY_ID=$access_key"
    echo "AWS_SECRET_ACCESS_KEY=$secret_key"
    echo "RINGSTORE_SHIP_TEST_PYTHON=$venv/bin/python"
    echo "RINGSTORE_SHIP_TEST_SERVER_CTL=$(cd "$(dirname "$0")" && pwd)/server.sh"
    echo "RINGSTORE_SHIP_STACK_STATE=$state"
    echo "RINGSTORE_SHIP_STACK_VENV=$venv"
    ;;
  *) echo "usage: server.sh start|stop|restart|env STATE_DIR VENV" >&2; exit 2 ;;
esac
