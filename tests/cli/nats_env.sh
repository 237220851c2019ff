# Sourced by the loopback tests (split_loopback.sh, compare_nats.sh): a scratch folder, a
# nats-server of their own on a free loopback port with a user and password (and any extra
# users), and the clean-up of every process they start.
#   nats_env PREFIX [EXTRA_USERS]   sets dir, url, port, pids, auth ($dir/auth) and traps EXIT;
#                                   exits 77 (skipped) when no nats-server is installed
#   fail MESSAGE                    prints the message and the tail of every log, exits 1
#   wait_sources PID...             waits for each source; one that failed fails the test
nats_env() {
  nats=""
  for p in /usr/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server; do
    [ -x "$p" ] && nats=$p && break
  done
  if [ -z "$nats" ]; then
    echo "SKIP: no nats-server installed (tools/install-deps installs it)"
    exit 77
  fi
  dir=$(mktemp -d "/tmp/$1-XXXXXX")
  pids=()
  trap nats_cleanup EXIT
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$dir/nats.conf" <<CONF
listen: 127.0.0.1:$port
authorization { users = [ { user: "oneadapt", password: "loopback-secret" }${2:+, $2} ] }
max_payload: 16MB
CONF
  "$nats" -c "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  url="nats://127.0.0.1:$port"
  auth=$dir/auth
  printf 'oneadapt:loopback-secret\n' >"$auth" && chmod 600 "$auth"
}
nats_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
fail() {
  echo "FAIL: $*"
  for f in "$dir"/*.log; do echo "--- $f"; tail -"${FAIL_TAIL:-20}" "$f"; done
  exit 1
}
wait_sources() {
  local i=0 p
  for p in "$@"; do
    i=$((i + 1))
    wait "$p" || fail "source $i exited with $?"
  done
}
