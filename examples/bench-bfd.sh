#!/usr/bin/env bash
# BFD at scale: N sessions at INTERVAL_MS × 3 between ternd and a load
# generator (examples/bfd_load.rs, ternd's own BFD task), each in its own
# network namespace on one veth. ternd has N passive [[peer]]s with
# bfd = true (10.77.1.1, 10.77.1.2, …, all on the generator's veth). Once
# all N are Up, both processes' CPU is measured over SECONDS and printed as
# % of one core.
#   as root: bash examples/bench-bfd.sh [N] [SECONDS] [INTERVAL_MS]   (defaults 1000, 30, 100)
set -euo pipefail
N=${1:-1000}
SECS=${2:-30}
INTERVAL=${3:-100}
cd "$(dirname "$0")/.."
cargo build --release --bin ternd --bin ternctl --example bfd_load >/dev/null 2>&1 ||
  cargo build --release --bin ternd --bin ternctl --example bfd_load
TMP=$(mktemp -d)
T=tbT$$; G=tbG$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
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
{
  for i in $(seq 0 $(( N - 1 ))); do echo "addr add $(addr "$i")/16 dev g0"; done
} > "$TMP/addrs.batch"
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

ip netns exec "$T" target/release/ternd --config "$TMP/tern.toml" >"$TMP/ternd.log" 2>&1 &
TERND=$!; PIDS+=("$TERND")
ip netns exec "$G" target/release/examples/bfd_load "$N" "$(addr 0)" 10.77.0.1 "$INTERVAL" >"$TMP/load.log" 2>&1 &
LOAD=$!; PIDS+=("$LOAD")

up() {
  local out
  out=$(target/release/ternctl --socket "$TMP/tern.sock" show bfd --json 2>/dev/null || true)
  grep -o '"state": *"Up"' <<<"$out" | wc -l || true
}
n=0
for _ in $(seq 1 600); do
  n=$(up)
  [ "${n:-0}" -ge "$N" ] && break
  sleep 0.1
done
if [ "${n:-0}" -lt "$N" ]; then
  echo "only $n of $N sessions Up after 60 s" >&2
  tail -5 "$TMP/ternd.log" "$TMP/load.log" >&2
  exit 1
fi
sleep 2   # settle: every session at its negotiated interval

# utime and stime of a process, clock ticks.
user() { awk '{print $14}' "/proc/$1/stat"; }
sys() { awk '{print $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
tu0=$(user "$TERND"); ts0=$(sys "$TERND"); lu0=$(user "$LOAD"); ls0=$(sys "$LOAD"); s0=$(date +%s.%N)
sleep "$SECS"
tu1=$(user "$TERND"); ts1=$(sys "$TERND"); lu1=$(user "$LOAD"); ls1=$(sys "$LOAD"); s1=$(date +%s.%N)
up_after=$(up)

pct() { awk -v d="$1" -v hz="$hz" -v s0="$s0" -v s1="$s1" 'BEGIN { printf "%.2f", 100 * d / hz / (s1 - s0) }'; }
pps=$(awk -v n="$N" -v i="$INTERVAL" 'BEGIN { printf "%d", n * 1000 / i }')
echo
echo "BFD: $N sessions at ${INTERVAL} ms x 3, measured over ${SECS} s (about $pps packets/s each way)"
echo
echo "| process | sessions Up (after) | CPU % of one core | user % | system % |"
echo "|---|---|---|---|---|"
echo "| ternd | $up_after/$N | $(pct $(( tu1 - tu0 + ts1 - ts0 ))) | $(pct $(( tu1 - tu0 ))) | $(pct $(( ts1 - ts0 ))) |"
echo "| load generator (bfd_load) | - | $(pct $(( lu1 - lu0 + ls1 - ls0 ))) | $(pct $(( lu1 - lu0 ))) | $(pct $(( ls1 - ls0 ))) |"
echo
echo "(On veth, a sender's system time includes the receiving namespace's softirq"
echo " delivery of its packets: each side pays for most of the other's receive path.)"
