#!/usr/bin/env bash
# Installs what a fresh machine lacks (scripts/install-deps), builds
# Spawnpool and runs a small pool on loopback: a master, two workers, a few
# spawns through the pool, a WebAssembly module pushed and run on the stock
# workers, `poolctl nodes` and `poolctl ps`, a supervision tree that
# survives a killed worker; then stops everything.
#
#   ./scripts/demo.sh            # build (release) and run the demo
#   DEMO_KEEP=1 ./scripts/demo.sh  # leave the pool running until Enter
#
# Everything runs in a temporary directory with its own cookie; ports come
# from DEMO_PORT (default 7400; HTTP and the dashboard on DEMO_PORT+1).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps
echo "==> building (release)"
cargo build --release --bins --quiet
# The WebAssembly module the demo pushes to the pool (guest/examples).
scripts/build-guests >/dev/null
BIN="$PWD/target/release"

PORT="${DEMO_PORT:-7400}"
HTTP_PORT=$((PORT + 1))
MASTER="127.0.0.1:$PORT"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# A cookie of our own, mode 0600, as the nodes require.
umask 077
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/cookie"
export POOL_COOKIE_FILE="$WORK/cookie"
export POOL_MASTER="$MASTER"
export RUST_LOG="${RUST_LOG:-warn}"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
wait_for() { # wait_for DESCRIPTION COMMAND...: up to 15 s
  local what="$1"; shift
  for _ in $(seq 1 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for $what" >&2; exit 1
}

say "starting pool-master on $MASTER (dashboard: http://127.0.0.1:$HTTP_PORT/)"
"$BIN/pool-master" --listen "$MASTER" --http "127.0.0.1:$HTTP_PORT" \
  --state-dir "$WORK/master" 2>"$WORK/master.log" &
PIDS+=($!)
wait_for "the master" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT"

# The zones of README's "by hand" pool and deploy/: demo.toml pins zone=b.
for wz in w1:a w2:b; do
  w=${wz%%:*}
  "$BIN/pool-worker" --name "$w" --label "zone=${wz#*:}" 2>"$WORK/$w.log" &
  PIDS+=($!)
done
wait_for "two workers" bash -c "[ \$('$BIN/poolctl' --json nodes | grep -c '\"name\"') -eq 2 ]"

say "poolctl nodes"
"$BIN/poolctl" nodes

say "spawning 6 CPU-busy processes: the master places them where there is headroom"
"$BIN/poolctl" spawn builtin.busy '{"ms": 1500}' --count 6

say "a call through the pool"
ECHO=$("$BIN/poolctl" spawn builtin.echo --on w2)
echo "echo process $ECHO on w2 answers:"
"$BIN/poolctl" call "$ECHO" '{"hello": "pool"}'

say "run a process and wait for its result"
"$BIN/poolctl" spawn builtin.sleep '{"ms": 200}' --wait

say "code shipped to the pool: a WebAssembly module, no worker rebuilt"
"$BIN/poolctl" module push target/guests/demo.wasm
"$BIN/poolctl" spawn demo.wasm:count '{"text": "the quick brown fox"}' --wait
"$BIN/poolctl" spawn demo.wasm:primes '{"from": 1, "to": 100000}' --wait

say "poolctl ps"
"$BIN/poolctl" ps

say "a supervision tree whose children the pool places on both workers"
"$BIN/poolctl" tree start examples/trees/demo.toml
sleep 0.5
"$BIN/poolctl" tree show demo

say "kill -9 of w1: its children restart on w2"
"$BIN/poolctl" --json nodes >/dev/null
kill -9 "${PIDS[1]}"
wait_for "the restarts" bash -c "! '$BIN/poolctl' --json ps | grep -q '\"node\": \"w1\"'"
sleep 0.3
"$BIN/poolctl" tree show demo

if [ -n "${DEMO_KEEP:-}" ]; then
  say "the pool keeps running; open http://127.0.0.1:$HTTP_PORT/ — press Enter to stop"
  read -r _
fi
say "stopping"
