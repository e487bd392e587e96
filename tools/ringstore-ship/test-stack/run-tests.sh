#!/usr/bin/env bash
# Runs ringstore-ship's tests against a real object store and Iceberg REST
# catalog started here: creates the venv from requirements.lock (hashes
# checked, wheels only), starts SeaweedFS `weed mini` on free 127.0.0.1
# ports, runs `cargo test -p ringstore-ship` with the variables the tests
# read, and stops the server whatever happens.
#
# Environment: CARGO_TARGET_DIR (default <repo>/target) holds the venv
# (ship-test-stack/venv) and the server's state (ship-test-stack/run-<pid>,
# removed at the end unless KEEP_STACK=1). Extra arguments go to cargo test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
venv=$target/ship-test-stack/venv
state=$target/ship-test-stack/run-$$

lock_sum=$(sha256sum "$here/requirements.lock" | cut -d' ' -f1)
if [[ ! -x $venv/bin/weed || "$(cat "$venv/.lock-sha256" 2>/dev/null)" != "$lock_sum" ]]; then
  echo "== test stack: creating $venv from requirements.lock" >&2
  rm -rf "$venv"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    --only-binary=:all: -r "$here/requirements.lock"
  echo "$lock_sum" >"$venv/.lock-sha256"
fi

cleanup() {
  "$here/server.sh" stop "$state" "$venv" || true
  if [[ ${KEEP_STACK:-0} != 1 ]]; then rm -rf "$state"; fi
}
trap cleanup EXIT INT TERM

echo "== test stack: starting weed mini (127.0.0.1 only)" >&2
"$here/server.sh" start "$state" "$venv"
set -a
# shellcheck disable=SC1090
source <("$here/server.sh" env "$state" "$venv")
set +a

echo "== ringstore-ship tests against the stack" >&2
cd "$repo"
cargo test -p ringstore-ship "$@"
