#!/usr/bin/env bash
# S2: a full table through the daemon, eBGP to eBGP. The daemon (AS 64512)
# runs alone in namespace D on CPU 0; examples/full_table.rs runs in namespace
# G on CPU 1 as a source peer (AS 65001, 192.168.50.2) that announces
# S2_PREFIXES /24s (100 per attribute set, one UPDATE each) and a sink peer
# (AS 65002, 192.168.50.3) that counts them. Time: the source's first UPDATE
# to the sink holding all of them; CPU: the daemon's from listening to then.
#   as root: bash examples/bench/s2.sh [DAEMON...]   (ternd bird frr gobgp)
#   env: S2_PREFIXES (default 1000000), S2_TIMEOUT seconds (default 900),
#        PERF_OUT=FILE: also profile the daemon over the run (perf report in FILE)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${S2_PREFIXES:-1000000}
TIMEOUT=${S2_TIMEOUT:-900}
DAEMONS=("$@")
[ ${#DAEMONS[@]} -gt 0 ] || DAEMONS=(ternd bird frr gobgp)
bench_init s2
bench_build --bin ternd --example full_table
RESULTS=$BENCH_TMP/s2.tsv
D=tbs2d$$
G=tbs2g$$
DAEMON_IP=192.168.50.1
SOURCE_IP=192.168.50.2
SINK_IP=192.168.50.3

ternd_conf() {
  cat <<EOC
[bgp]
asn = 64512
router_id = "$DAEMON_IP"
listen = ["$DAEMON_IP:179"]
[kernel]
enabled = false
[control]
socket = "$BENCH_TMP/ternd.sock"
[[policy]]
name = "all"
default = "accept"
[[peer]]
name = "source"
address = "$SOURCE_IP"
asn = 65001
passive = true
import = ["all"]
[[peer]]
name = "sink"
address = "$SINK_IP"
asn = 65002
passive = true
export = ["all"]
EOC
}

bird_conf() {
  cat <<EOC
log stderr { warning, error, fatal, bug };
router id $DAEMON_IP;
protocol device { }
protocol bgp from_source { local $DAEMON_IP as 64512; neighbor $SOURCE_IP as 65001; passive on; ipv4 { import all; export all; }; }
protocol bgp to_sink { local $DAEMON_IP as 64512; neighbor $SINK_IP as 65002; passive on; ipv4 { import all; export all; }; }
EOC
}

frr_conf() {
  cat <<EOC
router bgp 64512
 bgp router-id $DAEMON_IP
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor $SOURCE_IP remote-as 65001
 neighbor $SOURCE_IP passive
 neighbor $SINK_IP remote-as 65002
 neighbor $SINK_IP passive
 address-family ipv4 unicast
  neighbor $SOURCE_IP activate
  neighbor $SINK_IP activate
 exit-address-family
EOC
}

gobgp_conf() {
  cat <<EOC
[global.config]
  as = 64512
  router-id = "$DAEMON_IP"
  local-address-list = ["$DAEMON_IP"]
[global.apply-policy.config]
  default-import-policy = "accept-route"
  default-export-policy = "accept-route"
EOC
  local addr asn
  for addr in "$SOURCE_IP:65001" "$SINK_IP:65002"; do
    asn=${addr#*:}; addr=${addr%:*}
    cat <<EOC
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$addr"
    peer-as = $asn
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
EOC
  done
}

# start_daemon NAME: starts it in $D on $DAEMON_CPU; its PID in BENCH_LAST_PID.
start_daemon() {
  local dir=$BENCH_TMP/$1
  mkdir -p "$dir"
  case $1 in
    ternd)
      ternd_conf >"$dir/ternd.toml"
      bench_spawn "$DAEMON_CPU" "$D" "$dir/log" "$BENCH_BIN/ternd" --config "$dir/ternd.toml" ;;
    bird)
      bird_conf >"$dir/bird.conf"
      bench_spawn "$DAEMON_CPU" "$D" "$dir/log" bird -f -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid" ;;
    frr)
      # Alone, without zebra (-Z) or a kernel (-n), as root (-S); every path in $dir.
      frr_conf >"$dir/bgpd.conf"
      bench_spawn "$DAEMON_CPU" "$D" "$dir/log" /usr/lib/frr/bgpd -f "$dir/bgpd.conf" -i "$dir/bgpd.pid" \
        -z "$dir/zserv.api" --vty_socket "$dir" -P 0 -n -Z -S --log "file:$dir/bgpd.log" ;;
    gobgp)
      gobgp_conf >"$dir/gobgpd.toml"
      bench_spawn "$DAEMON_CPU" "$D" "$dir/log" gobgpd -t toml -f "$dir/gobgpd.toml" \
        --api-hosts 127.0.0.1:50051 --pprof-disable -l warn ;;
  esac
}

# run_daemon NAME: one measurement in fresh namespaces; appends its row.
run_daemon() {
  local name=$1 label; label=$(daemon_label "$1")
  if ! have_daemon "$name"; then bench_row "$RESULTS" "$label" "$N" "skipped: not installed"; return; fi
  bench_netns "$D"; bench_netns "$G"
  ip link add "v$D" netns "$D" type veth peer name "v$G" netns "$G"
  ip -n "$D" addr add "$DAEMON_IP/24" dev "v$D"
  ip -n "$G" addr add "$SOURCE_IP/24" dev "v$G"
  ip -n "$G" addr add "$SINK_IP/24" dev "v$G"
  ip -n "$D" link set "v$D" up; ip -n "$G" link set "v$G" up
  start_daemon "$name"
  local dpid=$BENCH_LAST_PID
  if ! bench_wait_listen "$D" 179; then
    tail "$BENCH_TMP/$name/"*log* >&2 || true
    bench_row "$RESULTS" "$label" "$N" "failed: not listening"
    finish_daemon "$dpid"; return
  fi
  sleep 1
  local c0; c0=$(cpu_s "$dpid")
  local res=$BENCH_TMP/$name/result.json stop=$BENCH_TMP/$name/stop
  bench_spawn "$LOAD_CPU" "$G" "$BENCH_TMP/$name/load.log" "$BENCH_BIN/examples/full_table" \
    --connect "$DAEMON_IP" --source "$SOURCE_IP" --sink "$SINK_IP" --prefixes "$N" \
    --timeout "$TIMEOUT" --result "$res" --stop "$stop"
  local gpid=$BENCH_LAST_PID perf_pid=""
  if [ -n "${PERF_OUT:-}" ]; then
    perf record -q -g -p "$dpid" -o "$BENCH_TMP/$name/perf.data" 2>/dev/null &
    perf_pid=$!
  fi
  while [ ! -s "$res" ] && kill -0 "$gpid" 2>/dev/null; do sleep 0.05; done
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    perf report -i "$BENCH_TMP/$name/perf.data" --no-children --percent-limit 0.7 --stdio -g none \
      >"$PERF_OUT.$name" 2>/dev/null || true
  fi
  # Read while both sessions are still up (before any teardown work).
  local c1 peak; c1=$(cpu_s "$dpid"); peak=$(hwm_mib "$dpid")
  touch "$stop"
  bench_reap "$gpid"
  if [ ! -s "$res" ] || ! grep -q '"converged":true' "$res"; then
    echo "S2 $name: the sink did not get all $N prefixes" >&2
    tail -n 5 "$BENCH_TMP/$name/load.log" "$BENCH_TMP/$name/"*log >&2 || true
    bench_row "$RESULTS" "$label" "$N" "failed: $(tail -n 1 "$BENCH_TMP/$name/load.log")"
  else
    local json secs upd bytes
    json=$(cat "$res")
    secs=$(sed 's/.*"seconds":\([0-9.e+-]*\).*/\1/' <<<"$json")
    upd=$(sed 's/.*"sink_updates":\([0-9]*\).*/\1/' <<<"$json")
    bytes=$(sed 's/.*"sink_bytes":\([0-9]*\).*/\1/' <<<"$json")
    bench_row "$RESULTS" "$label" "$N" "$(printf '%.3f' "$secs")" "$(sub "$c1" "$c0")" "$peak" \
      "$upd" "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b / 1048576}')"
    echo "S2 $label: $json" >&2
  fi
  finish_daemon "$dpid"
}

# finish_daemon PID: stops it and removes this run's namespaces.
finish_daemon() {
  bench_stop "$1"
  bench_netns_del "$G"; bench_netns_del "$D"
}

for d in "${DAEMONS[@]}"; do run_daemon "$d"; done
bench_table "S2 full table through the daemon, eBGP to eBGP ($(bench_machine))" \
  prefixes "time s" "$RESULTS" "sink UPDATEs" "sink MiB"
