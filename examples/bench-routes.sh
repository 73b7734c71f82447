#!/usr/bin/env bash
# Kept for old instructions: bench scenario S3 (one peer's N routes into the
# kernel, ternd vs BIRD), now examples/bench/s3.sh.
#   as root: bash examples/bench-routes.sh [N]        (default 100000)
exec bash "$(dirname "$0")/bench/s3.sh" "$@"
