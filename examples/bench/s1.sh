#!/usr/bin/env bash
# S1: route-reflector fan-in. examples/rr_scale/ runs the reflector (ternd,
# then BIRD) in one namespace on CPU 0 and N iBGP clients (2 /26s each) in
# another on CPU 1, for each client count; time is until every client holds
# every other client's routes. Also writes the times to $BENCH_OUT/s1.csv and
# draws them into $BENCH_OUT/s1.svg (examples/bench_chart.rs).
#   as root: bash examples/bench/s1.sh
#   env: S1_CLIENTS (default "200 1000"), S1_TIMEOUT seconds per reflector
#        (default 300), BENCH_OUT (default target/bench)
# Above 1,000 clients rr_scale routes the clients' addresses over the veth
# instead of putting them on-link: the host-wide neighbour table
# (net.ipv4.neigh.default.gc_thresh3, 1024 by default) holds one entry then.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
CLIENTS=${S1_CLIENTS:-200 1000}
TIMEOUT=${S1_TIMEOUT:-300}
OUT=${BENCH_OUT:-$BENCH_REPO/target/bench}
bench_init s1
bench_build --bin ternd --example rr_scale --example bench_chart
RESULTS=$BENCH_TMP/s1.tsv
mkdir -p "$OUT"
echo "daemon,clients,seconds" >"$OUT/s1.csv"
BIRD_ARG=()
have_daemon bird || BIRD_ARG=(--no-bird)

for n in $CLIENTS; do
  log=$BENCH_TMP/rr_scale-$n.log
  # rr_scale makes and removes its own namespaces and kills what runs in them;
  # its logs go to $BENCH_TMP (TMPDIR), removed with the rest.
  if ! TMPDIR=$BENCH_TMP "$BENCH_BIN/examples/rr_scale" --clients "$n" --routes 2 --timeout "$TIMEOUT" --daemon-cpu "$DAEMON_CPU" \
    --load-cpu "$LOAD_CPU" "${BIRD_ARG[@]}" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
  fi
  # rr_scale's own report per reflector (establishment, failures, routes received).
  grep -E '^(ternd|BIRD 2): ' "$log" | sed "s/^/S1 $n clients: /" >&2 || true
  for daemon in ternd bird; do
    label=$(daemon_label "$daemon")
    if [ "$daemon" = bird ] && [ ${#BIRD_ARG[@]} -gt 0 ]; then
      bench_row "$RESULTS" "$label" "$n" "skipped: not installed"; continue
    fi
    want=ternd; [ "$daemon" = bird ] && want="BIRD 2"
    line=$(grep "^result: .*\"reflector\":\"$want\"" "$log" | sed 's/^result: //' || true)
    if [ -z "$line" ] || grep -q '"converged_s":null' <<<"$line"; then
      grep -i "fail\|error" "$log" | head -n 3 >&2 || true
      bench_row "$RESULTS" "$label" "$n" "failed: did not converge (rr_scale log above)"; continue
    fi
    field() { sed "s/.*\"$1\":\([0-9.e+-]*\).*/\1/" <<<"$line"; }
    secs=$(printf '%.3f' "$(field converged_s)")
    bench_row "$RESULTS" "$label" "$n" "$secs" "$(printf '%.2f' "$(field cpu_s)")" \
      "$(awk -v k="$(field peak_kib)" 'BEGIN {printf "%.1f", k / 1024}')"
    echo "$label,$n,$secs" >>"$OUT/s1.csv"
  done
done

bench_table "S1 route-reflector fan-in, 2 routes per client ($(bench_machine))" \
  clients "converged s" "$RESULTS"
"$BENCH_BIN/examples/bench_chart" "$OUT/s1.csv" "$OUT/s1.svg"
echo
echo "S1 chart: $OUT/s1.svg (data: $OUT/s1.csv)"
