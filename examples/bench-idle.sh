#!/usr/bin/env bash
# Idle cost on a host with many pod interfaces: CPU seconds ternd and BIRD 2
# (with Calico's settings: device and kernel scans every 2 s) use over a quiet
# minute on a host with N veth pod interfaces and their /32 routes.
#   sudo bash examples/bench-idle.sh [N] [SECONDS]     (defaults 2000, 30)
set -euo pipefail
N=${1:-2000}
SECS=${2:-30}
cd "$(dirname "$0")/.."
cargo build --release --bins >/dev/null 2>&1 || cargo build --release --bins
TMP=$(mktemp -d)
H=tiH$$; P=tiP$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$H" 2>/dev/null || true
  ip netns del "$P" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$H"; ip netns add "$P"
ip -n "$H" link set lo up
# N pod interfaces: host ends in $H (cali*), pod ends parked in $P; a /32 per pod.
{
  for i in $(seq 1 "$N"); do
    a=$(( i / 250 )); b=$(( i % 250 + 2 ))
    echo "link add cali$i type veth peer name pod$i"
    echo "link set pod$i netns $P"
  done
} > "$TMP/links.batch"
ip -n "$H" -batch "$TMP/links.batch"
{
  for i in $(seq 1 "$N"); do
    a=$(( i / 250 )); b=$(( i % 250 + 2 ))
    echo "link set cali$i up"
    echo "route add 10.244.$a.$b/32 dev cali$i scope link"
  done
} > "$TMP/routes.batch"
ip -n "$H" -batch "$TMP/routes.batch" 2>/dev/null || true
cpu_s() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }
measure() {
  local name=$1; shift
  ip netns exec "$H" "$@" >"$TMP/$name.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  sleep 5   # start-up, first scans
  local c0; c0=$(cpu_s "$pid")
  sleep "$SECS"
  local c1; c1=$(cpu_s "$pid")
  printf '%-8s %8d %10d %14s\n' "$name" "$N" "$SECS" "$(echo "$c1 - $c0" | bc)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
cat >"$TMP/ternd.toml" <<EOC
[bgp]
asn = 64512
router_id = "192.168.9.1"
[kernel]
allowed_prefixes = ["10.244.0.0/16"]
[[originate]]
prefix = "10.244.0.0/24"
[control]
socket = "$TMP/ternd.sock"
EOC
cat >"$TMP/bird.conf" <<EOC
router id 192.168.9.1;
protocol device { scan time 2; }
protocol direct { ipv4; interface "-cali*", "*"; }
protocol kernel { ipv4 { import all; export all; }; learn; scan time 2; merge paths on; }
protocol static { ipv4; route 10.244.0.0/24 blackhole; }
EOC
printf '%-8s %8s %10s %14s\n' daemon pods seconds cpu_seconds
measure ternd target/release/ternd --config "$TMP/ternd.toml"
if command -v bird >/dev/null; then
  measure bird bird -f -c "$TMP/bird.conf" -s "$TMP/bird.ctl" -P "$TMP/bird.pid"
else
  echo "bird     skipped: bird not installed"
fi
