# Shared helpers of the bench suite (sourced by examples/bench/s*.sh): the
# build, namespaces and processes that are removed on exit or failure, CPU
# pinning, /proc readers and the markdown tables.
# shellcheck shell=bash

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_BIN=$BENCH_REPO/target/release
# The daemon under test runs on this CPU, load generators on the other.
DAEMON_CPU=${DAEMON_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$BENCH_REPO/target}

BENCH_PIDS=()
BENCH_NETNS=()
BENCH_TMP=""
BENCH_LAST_PID=""

# bench_init TAG: a temp dir, and cleanup on exit, error or signal.
bench_init() {
  [ "$(id -u)" = 0 ] || { echo "$1: needs root (network namespaces)" >&2; exit 1; }
  BENCH_TMP=$(mktemp -d "/tmp/tern-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  # The harness itself (polling, ip, ss) stays off the daemon's CPU; children
  # inherit this unless bench_spawn pins them elsewhere.
  taskset -cp "$LOAD_CPU" $$ >/dev/null
}

# Kills what we started (by PID), deletes our namespaces and the temp dir.
bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BENCH_PIDS[@]}"; do bench_reap "$p"; done
  for p in "${BENCH_NETNS[@]}"; do ip netns del "$p" 2>/dev/null || true; done
  BENCH_NETNS=()
  [ -n "$BENCH_TMP" ] && rm -rf "$BENCH_TMP"
  BENCH_TMP=""
}

# bench_reap PID: waits up to 5 s for PID to exit, then SIGKILLs it; forgets PID.
bench_reap() {
  local i
  for i in $(seq 50); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

# bench_stop PID: SIGTERM, then bench_reap.
bench_stop() {
  kill "$1" 2>/dev/null || true
  bench_reap "$1"
}

# bench_build CARGO_ARGS...: cargo build --release, quiet unless it fails.
bench_build() {
  (cd "$BENCH_REPO" && cargo build --release "$@" >/dev/null 2>&1) ||
    (cd "$BENCH_REPO" && cargo build --release "$@")
}

# bench_netns NAME: a namespace with lo up, deleted at cleanup.
bench_netns() {
  ip netns add "$1"
  BENCH_NETNS+=("$1")
  ip -n "$1" link set lo up
}

# bench_netns_del NAME: deletes it now (processes in it must be stopped first).
bench_netns_del() {
  ip netns del "$1" 2>/dev/null || true
  local keep=() n
  for n in "${BENCH_NETNS[@]}"; do [ "$n" = "$1" ] || keep+=("$n"); done
  BENCH_NETNS=("${keep[@]}")
}

# bench_spawn CPU NS LOG CMD...: runs CMD in NS pinned to CPU, in the
# background; its PID (ip netns exec and taskset exec it) in BENCH_LAST_PID.
bench_spawn() {
  local cpu=$1 ns=$2 log=$3; shift 3
  ip netns exec "$ns" taskset -c "$cpu" "$@" >"$log" 2>&1 </dev/null &
  BENCH_LAST_PID=$!
  BENCH_PIDS+=("$BENCH_LAST_PID")
}

# bench_wait_listen NS PORT [SECONDS]: until something listens on PORT in NS.
bench_wait_listen() {
  local i
  for i in $(seq $(( ${3:-20} * 10 ))); do
    ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  echo "nothing listens on port $2 in $1" >&2
  return 1
}

# cpu_s PID: user + system CPU seconds of PID (/proc/PID/stat fields 14, 15).
cpu_s() {
  local hz; hz=$(getconf CLK_TCK)
  sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$hz" '{printf "%.2f", ($12 + $13) / hz}'
}

# hwm_mib PID: peak resident set size (VmHWM) in MiB.
hwm_mib() { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# rss_mib PID: current resident set size (VmRSS) in MiB.
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# now_s: seconds since the epoch, with nanoseconds.
now_s() { date +%s.%N; }

# sub A B: A - B with two decimals.
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a - b}'; }

# have_daemon NAME: true when that daemon (ternd, bird, frr, gobgp) can run.
have_daemon() {
  case $1 in
    ternd) [ -x "$BENCH_BIN/ternd" ] ;;
    bird) command -v bird >/dev/null ;;
    frr) [ -x /usr/lib/frr/bgpd ] ;;
    gobgp) command -v gobgpd >/dev/null ;;
    *) return 1 ;;
  esac
}

# daemon_label NAME: the name in the tables, with the installed version.
daemon_label() {
  case $1 in
    ternd) echo ternd ;;
    bird) echo "BIRD $(bird --version 2>&1 | awk '{print $NF}')" ;;
    frr) echo "FRR bgpd $(/usr/lib/frr/bgpd --version 2>&1 | awk '/version/ {print $NF; exit}')" ;;
    gobgp) echo "gobgpd $(gobgpd --version 2>&1 | awk '{print $NF}')" ;;
  esac
}

# Results: a TSV file per scenario, one row per daemon and load:
#   DAEMON \t LOAD \t TIME_S \t CPU_S \t PEAK_MIB [\t EXTRA...]
# or DAEMON \t LOAD \t "skipped: ..." / "failed: ...".
# bench_row FILE FIELDS...: appends one row.
bench_row() {
  local f=$1; shift
  (IFS=$'\t'; echo "$*") >>"$f"
}

# bench_table TITLE LOAD_NAME TIME_NAME FILE [EXTRA_NAMES...]: prints FILE as
# a markdown table, with each row's ratio to ternd's row of the same load.
bench_table() {
  local title=$1 load=$2 time=$3 file=$4; shift 4
  local extra=""
  [ $# -gt 0 ] && extra=$(printf ' %s |' "$@")
  echo
  echo "### $title"
  echo
  echo "| daemon | $load | $time | CPU s | peak RSS MiB | ratio to ternd (time / CPU / RSS) |$extra"
  local sep="|---|---|---|---|---|---|" _x
  for _x in "$@"; do sep+="---|"; done
  echo "$sep"
  awk -F'\t' -v n=$# '
    $1 == "ternd" && $3 ~ /^[0-9.]+$/ { t[$2] = $3; c[$2] = $4; r[$2] = $5 }
    { rows[NR] = $0 }
    function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "-" }
    END {
      for (i = 1; i <= NR; i++) {
        split(rows[i], f, "\t")
        if (f[3] !~ /^[0-9.]+$/) { printf "| %s | %s | %s |\n", f[1], f[2], f[3]; continue }
        rel = ((f[2] in t) ? ratio(f[3], t[f[2]]) " / " ratio(f[4], c[f[2]]) " / " ratio(f[5], r[f[2]]) : "-")
        line = sprintf("| %s | %s | %s | %s | %s | %s |", f[1], f[2], f[3], f[4], f[5], rel)
        for (j = 6; j < 6 + n; j++) line = line " " f[j] " |"
        print line
      }
    }' "$file"
}

# bench_machine: the machine for table titles (all CPUs, not only ours).
bench_machine() { echo "$(nproc --all) vCPU, kernel $(uname -r)"; }
