#!/usr/bin/env bash
# Time for one peer's N routes to reach the kernel, and daemon RSS at idle and
# with the routes learned: ternd beside BIRD 2, same machine, same run.
#   sudo bash examples/bench-routes.sh [N]        (default 100000)
set -euo pipefail
N=${1:-100000}
cd "$(dirname "$0")/.."
cargo build --release --bins --example inject >/dev/null 2>&1 || cargo build --release --bins --example inject
BIN=target/release
INJECT=target/release/examples/inject
TMP=$(mktemp -d)
A=tbA$$; B=tbB$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$A"; ip netns add "$B"
ip link add "v$A" type veth peer name "v$B"
ip link set "v$A" netns "$A"; ip link set "v$B" netns "$B"
ip -n "$A" addr add 192.168.7.1/24 dev "v$A"; ip -n "$B" addr add 192.168.7.2/24 dev "v$B"
for n in "$A" "$B"; do ip -n "$n" link set lo up; done
ip -n "$A" link set "v$A" up; ip -n "$B" link set "v$B" up

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
count_routes() { ip -n "$A" -4 route show proto bird | grep -c '^10\.' || true; }
now_ms() { date +%s%3N; }

# run_case NAME START_CMD...: starts the daemon in $A, injects N routes from $B.
run_case() {
  local name=$1; shift
  ip netns exec "$A" "$@" >"$TMP/$name.log" 2>&1 &
  local dpid=$!; PIDS+=("$dpid")
  # Wait for the daemon to listen.
  for _ in $(seq 100); do ip netns exec "$A" ss -ltn | grep -q ':179 ' && break; sleep 0.1; done
  sleep 0.5
  local idle; idle=$(rss_kb "$dpid")
  # Count route additions as the kernel announces them (polling full dumps
  # would hold the routing lock and slow down whichever daemon is measured).
  ip -rcvbuf 67108864 -n "$A" -4 monitor route >"$TMP/$name.monitor" &
  local mpid=$!; PIDS+=("$mpid")
  sleep 0.2
  local t0; t0=$(now_ms)
  ip netns exec "$B" "$INJECT" 192.168.7.1:179 65002 192.168.7.2 192.168.7.2 "$N" 600 2>"$TMP/$name.inject" &
  local ipid=$!; PIDS+=("$ipid")
  while [ "$(grep -c '^10\.' "$TMP/$name.monitor" || true)" -lt "$N" ]; do
    if [ $(( $(now_ms) - t0 )) -gt 300000 ]; then echo "$name: timed out"; tail "$TMP/$name.log"; exit 1; fi
    sleep 0.05
  done
  local t1; t1=$(now_ms)
  kill "$mpid" 2>/dev/null || true
  [ "$(count_routes)" -ge "$N" ] || { echo "$name: kernel has fewer than $N routes"; exit 1; }
  local full; full=$(rss_kb "$dpid")
  local cpu; cpu=$(awk '{printf "%.2f", ($14+$15)/100}' "/proc/$dpid/stat")
  sleep 2
  local settled; settled=$(rss_kb "$dpid")
  printf '%-8s %10d %12d %14d %14d %14d %10s\n' "$name" "$N" "$((t1 - t0))" "$idle" "$full" "$settled" "$cpu"
  kill "$ipid" "$dpid" 2>/dev/null || true; wait "$ipid" "$dpid" 2>/dev/null || true
  ip -n "$A" route flush proto bird 2>/dev/null || true
}

cat >"$TMP/ternd.toml" <<EOC
[bgp]
asn = 64512
router_id = "192.168.7.1"
[kernel]
allowed_prefixes = ["10.0.0.0/8"]
[control]
socket = "$TMP/ternd.sock"
[[peer]]
address = "192.168.7.2"
asn = 65002
passive = true
EOC
cat >"$TMP/bird.conf" <<EOC
router id 192.168.7.1;
protocol device {}
protocol kernel { ipv4 { export all; }; merge paths on; }
protocol bgp inject { local as 64512; neighbor 192.168.7.2 as 65002; passive on; ipv4 { import all; export none; }; }
EOC

printf '%-8s %10s %12s %14s %14s %14s %10s\n' daemon routes to_kernel_ms rss_idle_kb rss_loaded_kb rss_2s_later cpu_s
run_case ternd "$BIN/ternd" --config "$TMP/ternd.toml"
if command -v bird >/dev/null; then
  run_case bird bird -f -c "$TMP/bird.conf" -s "$TMP/bird.ctl" -P "$TMP/bird.pid"
else
  echo "bird    skipped: bird not installed"
fi
