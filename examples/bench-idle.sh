#!/usr/bin/env bash
# Kept for old instructions: bench scenario S5 (CPU to learn N pod routes and
# per idle minute, ternd vs BIRD), now examples/bench/s5.sh.
#   as root: bash examples/bench-idle.sh [N] [IDLE_SECONDS]     (defaults 2000, 30)
exec bash "$(dirname "$0")/bench/s5.sh" "$@"
