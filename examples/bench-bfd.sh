#!/usr/bin/env bash
# BFD at scale: N sessions at INTERVAL_MS × 3 between a daemon and a load
# generator (examples/bfd_load.rs, ternd's own BFD task), each in its own
# network namespace on one veth, the daemon pinned to CPU 0 and the
# generator to CPU 1. The daemon is ternd (N passive [[peer]]s with
# bfd = true), then FRR's bfdd if installed (N `peer`s), same run. Once the
# generator sees all N Up, the daemon's CPU is measured over SECONDS and
# printed as % of one core. A last row measures the floor: the same packet
# rate sent and received by loops that only call send/recv, waking every
# 10 ms, no BFD: what the kernel alone charges for the traffic.
#   as root: bash examples/bench-bfd.sh [N] [SECONDS] [INTERVAL_MS]   (defaults 1000, 30, 100)
#   PERF_OUT=report.txt ...   also profiles ternd over the measured window
set -euo pipefail
N=${1:-1000}
SECS=${2:-30}
INTERVAL=${3:-100}
cd "$(dirname "$0")/.."
cargo build --release --bin ternd --example bfd_load >/dev/null 2>&1 ||
  cargo build --release --bin ternd --example bfd_load
LOADGEN=target/release/examples/bfd_load
BFDD=/usr/lib/frr/bfdd
TMP=$(mktemp -d)
chmod 777 "$TMP"   # bfdd runs as the frr user and writes its pid, log and sockets here
T=tbT$$; G=tbG$$
PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_all
  ip netns del "$T" 2>/dev/null || true
  ip netns del "$G" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$T"; ip netns add "$G"
ip link add t0 netns "$T" type veth peer name g0 netns "$G"
ip -n "$T" link set lo up; ip -n "$G" link set lo up
ip -n "$T" addr add 10.77.0.1/16 dev t0; ip -n "$T" link set t0 up
# The generator's N addresses, 10.77.1.1 onwards (10.77.0.0/16 is on-link).
addr() { local i=$(( $1 + 256 + 1 )); echo "10.77.$(( i / 256 )).$(( i % 256 ))"; }
for i in $(seq 0 $(( N - 1 ))); do echo "addr add $(addr "$i")/16 dev g0"; done > "$TMP/addrs.batch"
ip -n "$G" -batch "$TMP/addrs.batch"
ip -n "$G" link set g0 up

{
  cat <<TOML
[bgp]
asn = 64512
router_id = "10.77.0.1"
listen = ["0.0.0.0:179"]

[kernel]
enabled = false

[control]
socket = "$TMP/tern.sock"

[bfd]
min_rx_ms = $INTERVAL
min_tx_ms = $INTERVAL
multiplier = 3
TOML
  for i in $(seq 0 $(( N - 1 ))); do
    printf '\n[[peer]]\naddress = "%s"\nasn = 64512\npassive = true\nbfd = true\n' "$(addr "$i")"
  done
} > "$TMP/tern.toml"
{
  echo "bfd"
  for i in $(seq 0 $(( N - 1 ))); do
    printf ' peer %s local-address 10.77.0.1\n  receive-interval %s\n  transmit-interval %s\n  detect-multiplier 3\n !\n' \
      "$(addr "$i")" "$INTERVAL" "$INTERVAL"
  done
  echo "!"
} > "$TMP/bfdd.conf"

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Context switches of all a process's threads: how often it sleeps and wakes.
switches() { cat /proc/"$1"/task/*/status | awk '/^(non)?voluntary_ctxt_switches/ {n += $2} END {print n}'; }
pct() { awk -v d="$1" -v hz="$hz" -v w="$2" 'BEGIN { printf "%.2f", 100 * d / hz / w }'; }
ROWS=()

# measure NAME PID: waits for the generator to see all N Up, then measures PID.
measure() {
  local name=$1 pid=$2 up=0
  for _ in $(seq 1 600); do
    up=$(tail -1 "$TMP/load.log" 2>/dev/null | awk -F'[ /]' '/^up/ {print $2}')
    [ "${up:-0}" -ge "$N" ] && break
    sleep 0.1
  done
  if [ "${up:-0}" -lt "$N" ]; then
    echo "$name: only ${up:-0} of $N sessions Up after 60 s" >&2
    tail -5 "$TMP/load.log" "$TMP/ternd.log" "$TMP"/bfdd.out "$TMP"/bfdd.log 2>/dev/null >&2 || true
    ROWS+=("| $name | ${up:-0}/$N (not all Up) | - | - | - |")
    return
  fi
  sleep 2   # settle: every session at its negotiated interval
  local c0 w0 s0 c1 w1 s1 after
  c0=$(cpu_ticks "$pid"); w0=$(switches "$pid"); s0=$(date +%s.%N)
  if [ -n "${PERF_OUT:-}" ] && [ "$name" = ternd ]; then
    perf record -q -g -p "$pid" -o "$TMP/perf.data" -- sleep "$SECS" 2>/dev/null
    perf report -i "$TMP/perf.data" --no-children --percent-limit 1 --stdio >"$PERF_OUT" 2>/dev/null
    perf report -i "$TMP/perf.data" --children --percent-limit 3 --stdio -g none >"$PERF_OUT.children" 2>/dev/null
  else
    sleep "$SECS"
  fi
  c1=$(cpu_ticks "$pid"); w1=$(switches "$pid"); s1=$(date +%s.%N)
  after=$(tail -1 "$TMP/load.log" | awk -F'[ /]' '/^up/ {print $2}')
  local wall
  wall=$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')
  ROWS+=("| $name | ${after:-0}/$N | $(pct $(( c1 - c0 )) "$wall") | $(awk -v d=$(( w1 - w0 )) -v w="$wall" 'BEGIN { printf "%d", d / w }') |")
}

# ternd
ip netns exec "$T" taskset -c 0 target/release/ternd --config "$TMP/tern.toml" >"$TMP/ternd.log" 2>&1 &
TERND=$!; PIDS+=("$TERND")
ip netns exec "$G" taskset -c 1 "$LOADGEN" "$N" "$(addr 0)" 10.77.0.1 "$INTERVAL" >"$TMP/load.log" 2>&1 &
PIDS+=("$!")
measure ternd "$TERND"
stop_all

# FRR bfdd, standalone (no zebra), as the frr user it insists on.
if [ -x "$BFDD" ]; then
  rm -f "$TMP/load.log"
  ip netns exec "$T" taskset -c 0 "$BFDD" -f "$TMP/bfdd.conf" -i "$TMP/bfdd.pid" --vty_socket "$TMP" \
    -z "$TMP/zserv.api" --bfdctl "$TMP/bfdd.sock" -u frr -g frr -P 0 --log "file:$TMP/bfdd.log" \
    >"$TMP/bfdd.out" 2>&1 &
  BFDD_PID=$!; PIDS+=("$BFDD_PID")
  ip netns exec "$G" taskset -c 1 "$LOADGEN" "$N" "$(addr 0)" 10.77.0.1 "$INTERVAL" >"$TMP/load.log" 2>&1 &
  PIDS+=("$!")
  measure "FRR bfdd $("$BFDD" -v 2>/dev/null | awk '/version/ {print $NF; exit}')" "$BFDD_PID"
  stop_all
else
  ROWS+=("| FRR bfdd | skipped: not installed | - | - |")
fi

# The floor: the kernel's cost of the same packets, sent and received with no BFD logic.
ip netns exec "$T" taskset -c 0 "$LOADGEN" floor-recv 10.77.0.1 "$SECS" >"$TMP/floor-recv.log" 2>&1 &
RECV=$!; PIDS+=("$RECV")
sleep 0.2
ip netns exec "$G" taskset -c 1 "$LOADGEN" floor-send "$N" "$(addr 0)" 10.77.0.1 "$INTERVAL" "$SECS" >"$TMP/floor-send.log" 2>&1
wait "$RECV" || true
PIDS=()
send_pct=$(awk '{print $(NF-4)}' "$TMP/floor-send.log")
recv_pct=$(awk '{print $(NF-4)}' "$TMP/floor-recv.log")

pps=$(awk -v n="$N" -v i="$INTERVAL" 'BEGIN { printf "%d", n * 1000 / (0.875 * i) }')
echo
echo "BFD: $N sessions at ${INTERVAL} ms x 3, daemon on CPU 0, measured over ${SECS} s"
echo "(about $pps packets/s each way after RFC 5880 jitter; $(nproc) CPUs, kernel $(uname -r))"
echo
echo "| daemon | sessions Up (after) | CPU % of one core | context switches/s |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo "| floor: send() + recv() per packet, 10 ms wakeups, no BFD | - | $(awk -v a="$send_pct" -v b="$recv_pct" 'BEGIN { printf "%.2f (send %.2f + recv %.2f)", a + b, a, b }') | - |"
echo
echo "(On veth, a sender's system time includes the receiving namespace's softirq"
echo " delivery of its packets: each side pays for most of the other's receive path.)"
