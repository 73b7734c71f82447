#!/usr/bin/env bash
# S3: one peer's routes into the kernel. The daemon (AS 64512) runs in
# namespace A on CPU 0; examples/inject.rs in namespace B on CPU 1 announces
# N /26s from 10.0.0.0 and End-of-RIB. Time: from starting the injector until
# `ip monitor` in A has seen all N routes added; CPU: the daemon's from
# listening to then. ternd and BIRD (FRR and GoBGP are not run here).
#   as root: bash examples/bench/s3.sh [N]       (or env S3_ROUTES; default 100000)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${1:-${S3_ROUTES:-100000}}
bench_init s3
bench_build --bins --example inject
RESULTS=$BENCH_TMP/s3.tsv
A=tbs3a$$
B=tbs3b$$

cat >"$BENCH_TMP/ternd.toml" <<EOC
[bgp]
asn = 64512
router_id = "192.168.7.1"
[kernel]
allowed_prefixes = ["10.0.0.0/8"]
[control]
socket = "$BENCH_TMP/ternd.sock"
[[peer]]
address = "192.168.7.2"
asn = 65002
passive = true
EOC
cat >"$BENCH_TMP/bird.conf" <<EOC
router id 192.168.7.1;
protocol device {}
protocol kernel { ipv4 { export all; }; merge paths on; }
protocol bgp inject { local as 64512; neighbor 192.168.7.2 as 65002; passive on; ipv4 { import all; export none; }; }
EOC

# run_case NAME CMD...: the daemon in a fresh $A, N routes injected from $B.
run_case() {
  local name=$1 label; label=$(daemon_label "$1"); shift
  if ! have_daemon "$name"; then bench_row "$RESULTS" "$label" "$N" "skipped: not installed"; return; fi
  bench_netns "$A"; bench_netns "$B"
  ip link add "v$A" netns "$A" type veth peer name "v$B" netns "$B"
  ip -n "$A" addr add 192.168.7.1/24 dev "v$A"; ip -n "$B" addr add 192.168.7.2/24 dev "v$B"
  ip -n "$A" link set "v$A" up; ip -n "$B" link set "v$B" up
  bench_spawn "$DAEMON_CPU" "$A" "$BENCH_TMP/$name.log" "$@"
  local dpid=$BENCH_LAST_PID
  bench_wait_listen "$A" 179
  sleep 0.5
  local idle c0; idle=$(rss_mib "$dpid"); c0=$(cpu_s "$dpid")
  # Count route additions as the kernel announces them (polling full dumps
  # would hold the routing lock and slow down whichever daemon is measured).
  bench_spawn "$LOAD_CPU" "$A" "$BENCH_TMP/$name.monitor" ip -rcvbuf 67108864 -4 monitor route
  local mpid=$BENCH_LAST_PID
  sleep 0.2
  local t0; t0=$(now_s)
  bench_spawn "$LOAD_CPU" "$B" "$BENCH_TMP/$name.inject" "$BENCH_BIN/examples/inject" \
    192.168.7.1:179 65002 192.168.7.2 192.168.7.2 "$N" 600
  local ipid=$BENCH_LAST_PID
  local ok=1
  while [ "$(grep -c '^10\.' "$BENCH_TMP/$name.monitor" || true)" -lt "$N" ]; do
    if [ "$(sub "$(now_s)" "$t0" | cut -d. -f1)" -gt 300 ]; then ok=0; break; fi
    sleep 0.05
  done
  local t1 c1 peak; t1=$(now_s); c1=$(cpu_s "$dpid"); peak=$(hwm_mib "$dpid")
  bench_stop "$mpid"
  local in_kernel; in_kernel=$(ip -n "$A" -4 route show proto bird | grep -c '^10\.' || true)
  if [ "$ok" = 1 ] && [ "$in_kernel" -ge "$N" ]; then
    sleep 2
    bench_row "$RESULTS" "$label" "$N" "$(sub "$t1" "$t0")" "$(sub "$c1" "$c0")" "$peak" "$idle" "$(rss_mib "$dpid")"
  else
    tail -n 5 "$BENCH_TMP/$name.log" "$BENCH_TMP/$name.inject" >&2 || true
    bench_row "$RESULTS" "$label" "$N" "failed: $in_kernel of $N routes in the kernel after 300 s"
  fi
  bench_stop "$ipid"; bench_stop "$dpid"
  bench_netns_del "$B"; bench_netns_del "$A"
}

run_case ternd "$BENCH_BIN/ternd" --config "$BENCH_TMP/ternd.toml"
run_case bird bird -f -c "$BENCH_TMP/bird.conf" -s "$BENCH_TMP/bird.ctl" -P "$BENCH_TMP/bird.pid"
bench_table "S3 one peer's routes into the kernel ($(bench_machine))" \
  routes "to kernel s" "$RESULTS" "RSS idle MiB" "RSS 2 s later MiB"
