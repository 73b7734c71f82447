#!/usr/bin/env bash
# The bench suite: runs the named scenarios (default all) one after another,
# each printing a markdown table of ternd beside the other installed daemons.
#   as root: bash examples/bench/run.sh [S1 S2 S3 S5]
#   S1  route-reflector fan-in     (S1_CLIENTS="200 1000"; chart in target/bench/s1.svg)
#   S2  full table through the daemon, eBGP to eBGP  (S2_PREFIXES=1000000)
#   S3  one peer's routes into the kernel            (S3_ROUTES=100000)
#   S5  learning pod routes, then idle               (S5_PODS=2000, S5_IDLE_SECS=30)
# Daemons run pinned to CPU 0 (DAEMON_CPU), load generators to CPU 1 (LOAD_CPU).
set -uo pipefail
here=$(dirname "$0")
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(S1 S2 S3 S5)
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces)" >&2; exit 1; }
echo "tern bench suite, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc --all) vCPU, kernel $(uname -r)"
failed=()
for s in "${SCENARIOS[@]}"; do
  case $s in
    S1|S2|S3|S5) script=$here/$(echo "$s" | tr S s).sh ;;
    *) echo "unknown scenario $s (S1 S2 S3 S5)" >&2; failed+=("$s"); continue ;;
  esac
  bash "$script" || failed+=("$s")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
