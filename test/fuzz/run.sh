#!/usr/bin/env bash
# Runs each fuzz target for a while and prints how many inputs it executed.
# Usage: run.sh SECONDS TARGET... ; fails on the first target that crashes,
# leaving the input in build/fuzz/artifacts/.
set -euo pipefail
secs=$1
shift
mkdir -p build/fuzz/artifacts
for t in "$@"; do
    n=$(basename "$t")
    mkdir -p "build/fuzz/corpus/$n"
    log="build/fuzz/$n.log"
    if ! "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build/fuzz/artifacts/$n-" \
        "build/fuzz/corpus/$n" "test/fuzz/corpus/$n" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "FUZZ $n: FAILED (see $log)" >&2
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    printf 'FUZZ %-28s %10s execs in %ss\n' "$n" "$execs" "$secs"
done
