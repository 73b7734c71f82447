#!/usr/bin/env bash
# Cost of pod interfaces, ternd (with [learn], as Calico needs it for borrowed
# pod IPs) beside BIRD 2 (Calico's settings: kernel `learn`, device and kernel
# scans every 2 s). Each daemon runs alone in a fresh namespace; N veth pod
# interfaces with a /32 `proto boot` route each (as Felix writes them) are
# created while it runs. Printed per daemon: CPU seconds while the N routes
# are created and learned, and CPU seconds per idle minute afterwards.
#   as root: bash examples/bench-idle.sh [N] [IDLE_SECONDS]     (defaults 2000, 30)
set -euo pipefail
N=${1:-2000}
SECS=${2:-30}
cd "$(dirname "$0")/.."
cargo build --release --bins >/dev/null 2>&1 || cargo build --release --bins
TMP=$(mktemp -d)
H=tiH$$; P=tiP$$
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  ip netns del "$H" 2>/dev/null || true
  ip netns del "$P" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# N pod interfaces: host ends cali* in $H, pod ends parked in $P; a /32 per
# pod inside 10.244.0.0/16 (ip route's default protocol is 3, "boot").
{
  for i in $(seq 1 "$N"); do
    echo "link add cali$i type veth peer name pod$i"
    echo "link set pod$i netns $P"
  done
} > "$TMP/links.batch"
{
  for i in $(seq 1 "$N"); do
    a=$(( i / 250 )); b=$(( i % 250 + 2 ))
    echo "link set cali$i up"
    echo "route add 10.244.$a.$b/32 dev cali$i scope link"
  done
} > "$TMP/routes.batch"

cpu_s() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }

# measure NAME LEARNED_CMD DAEMON_CMD...: LEARNED_CMD prints how many pod
# routes the daemon has learned; waits (up to 60 s) until all N are.
measure() {
  local name=$1 learned=$2; shift 2
  ip netns add "$H"; ip netns add "$P"
  ip -n "$H" link set lo up
  ip netns exec "$H" "$@" >"$TMP/$name.log" 2>&1 &
  PID=$!
  sleep 3   # start-up
  local c0; c0=$(cpu_s "$PID")
  local t0; t0=$(date +%s.%N)
  ip -n "$H" -batch "$TMP/links.batch"
  ip -n "$H" -batch "$TMP/routes.batch"
  local n=0
  for _ in $(seq 1 600); do
    n=$($learned 2>/dev/null || echo 0)
    [ "${n:-0}" -ge "$N" ] && break
    sleep 0.1
  done
  local t1; t1=$(date +%s.%N)
  local c1; c1=$(cpu_s "$PID")
  sleep "$SECS"
  local c2; c2=$(cpu_s "$PID")
  printf '%-6s %7d %8d %13.1f %14.2f %14.2f\n' "$name" "$N" "$n" "$(echo "$t1 - $t0" | bc)" \
    "$(echo "$c1 - $c0" | bc)" "$(echo "($c2 - $c1) * 60 / $SECS" | bc -l)"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  ip netns del "$H"; ip netns del "$P"
}

cat >"$TMP/ternd.toml" <<EOC
[bgp]
asn = 64512
router_id = "192.168.9.1"
[kernel]
allowed_prefixes = ["10.244.0.0/16"]
[[originate]]
prefix = "10.244.250.0/26"
[learn]
protocols = [3, 80]
prefixes = ["10.244.0.0/16"]
interfaces = ["cali*"]
[control]
socket = "$TMP/ternd.sock"
EOC
cat >"$TMP/bird.conf" <<EOC
router id 192.168.9.1;
protocol device { scan time 2; }
protocol direct { ipv4; interface "-cali*", "*"; }
protocol kernel { ipv4 { import all; export all; }; learn; scan time 2; merge paths on; }
protocol static { ipv4; route 10.244.250.0/26 blackhole; }
EOC
ternd_learned() {
  ip netns exec "$H" target/release/ternctl --socket "$TMP/ternd.sock" show status --json |
    sed -n 's/.*"learned_routes": *\([0-9]*\).*/\1/p'
}
bird_learned() {
  ip netns exec "$H" birdc -s "$TMP/bird.ctl" show route count protocol kernel1 |
    sed -n 's/^\([0-9]*\) of .*/\1/p'
}

printf '%-6s %7s %8s %13s %14s %14s\n' daemon pods learned learn_time_s cpu_s_to_learn cpu_s_per_min
measure ternd ternd_learned target/release/ternd --config "$TMP/ternd.toml"
if command -v bird >/dev/null; then
  measure bird bird_learned bird -f -c "$TMP/bird.conf" -s "$TMP/bird.ctl" -P "$TMP/bird.pid"
else
  echo "bird   skipped: bird not installed"
fi
