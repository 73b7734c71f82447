#!/usr/bin/env bash
# S5: the cost of pod interfaces. ternd (with [learn], as Calico needs it for
# borrowed pod IPs) and BIRD 2 (Calico's settings: kernel `learn`, device and
# kernel scans every 2 s) each run alone on CPU 0 in a fresh namespace while
# N veth pod interfaces with a /32 `proto boot` route each (as Felix writes
# them) are created from CPU 1. Time and CPU: until the daemon has learned all
# N routes; then CPU seconds per idle minute over IDLE_SECONDS.
#   as root: bash examples/bench/s5.sh [N] [IDLE_SECONDS]
#   (or env S5_PODS, S5_IDLE_SECS; defaults 2000, 30)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${1:-${S5_PODS:-2000}}
SECS=${2:-${S5_IDLE_SECS:-30}}
bench_init s5
bench_build --bins
RESULTS=$BENCH_TMP/s5.tsv
H=tbs5h$$
P=tbs5p$$

# N pod interfaces: host ends cali* in $H, pod ends parked in $P; a /32 per
# pod inside 10.244.0.0/16 (ip route's default protocol is 3, "boot").
{
  for i in $(seq 1 "$N"); do
    echo "link add cali$i type veth peer name pod$i"
    echo "link set pod$i netns $P"
  done
} >"$BENCH_TMP/links.batch"
{
  for i in $(seq 1 "$N"); do
    a=$(( i / 250 )); b=$(( i % 250 + 2 ))
    echo "link set cali$i up"
    echo "route add 10.244.$a.$b/32 dev cali$i scope link"
  done
} >"$BENCH_TMP/routes.batch"

cat >"$BENCH_TMP/ternd.toml" <<EOC
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
socket = "$BENCH_TMP/ternd.sock"
EOC
cat >"$BENCH_TMP/bird.conf" <<EOC
router id 192.168.9.1;
protocol device { scan time 2; }
protocol direct { ipv4; interface "-cali*", "*"; }
protocol kernel { ipv4 { import all; export all; }; learn; scan time 2; merge paths on; }
protocol static { ipv4; route 10.244.250.0/26 blackhole; }
EOC
ternd_learned() {
  ip netns exec "$H" "$BENCH_BIN/ternctl" --socket "$BENCH_TMP/ternd.sock" show status --json |
    sed -n 's/.*"learned_routes": *\([0-9]*\).*/\1/p'
}
bird_learned() {
  ip netns exec "$H" birdc -s "$BENCH_TMP/bird.ctl" show route count protocol kernel1 |
    sed -n 's/^\([0-9]*\) of .*/\1/p'
}

# measure NAME LEARNED_CMD DAEMON_CMD...: LEARNED_CMD prints how many pod
# routes the daemon has learned; waits (up to 60 s) until all N are.
measure() {
  local name=$1 learned=$2 label; label=$(daemon_label "$1"); shift 2
  if ! have_daemon "$name"; then bench_row "$RESULTS" "$label" "$N" "skipped: not installed"; return; fi
  bench_netns "$H"; bench_netns "$P"
  bench_spawn "$DAEMON_CPU" "$H" "$BENCH_TMP/$name.log" "$@"
  local pid=$BENCH_LAST_PID
  sleep 3   # start-up
  local c0 t0; c0=$(cpu_s "$pid"); t0=$(now_s)
  ip -n "$H" -batch "$BENCH_TMP/links.batch"
  ip -n "$H" -batch "$BENCH_TMP/routes.batch"
  local n=0 i
  for i in $(seq 1 600); do
    n=$($learned 2>/dev/null || echo 0)
    [ "${n:-0}" -ge "$N" ] && break
    sleep 0.1
  done
  local t1 c1 peak; t1=$(now_s); c1=$(cpu_s "$pid"); peak=$(hwm_mib "$pid")
  if [ "${n:-0}" -ge "$N" ]; then
    sleep "$SECS"
    local c2; c2=$(cpu_s "$pid")
    bench_row "$RESULTS" "$label" "$N" "$(sub "$t1" "$t0")" "$(sub "$c1" "$c0")" "$peak" \
      "$(awk -v a="$c2" -v b="$c1" -v s="$SECS" 'BEGIN {printf "%.2f", (a - b) * 60 / s}')"
  else
    tail -n 5 "$BENCH_TMP/$name.log" >&2 || true
    bench_row "$RESULTS" "$label" "$N" "failed: learned ${n:-0} of $N routes in 60 s"
  fi
  bench_stop "$pid"
  bench_netns_del "$H"; bench_netns_del "$P"
}

measure ternd ternd_learned "$BENCH_BIN/ternd" --config "$BENCH_TMP/ternd.toml"
measure bird bird_learned bird -f -c "$BENCH_TMP/bird.conf" -s "$BENCH_TMP/bird.ctl" -P "$BENCH_TMP/bird.pid"
bench_table "S5 learning N pod routes, then idle ($(bench_machine); idle over $SECS s)" \
  pods "learn s" "$RESULTS" "CPU s per idle minute"
