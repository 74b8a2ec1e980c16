#!/bin/bash
# The hot-keys drain table of docs/benchmarks.md: three interleaved repetitions of
# drain on PostgreSQL at broker round trips 0 and 2ms with 1000, 10 and 1 keys and a
# Zipf skew over 1000. Run from the repository root: bash docs/bench/hotkeys.sh out.jsonl
out=${1:-hotkeys.jsonl}
: > $out
for rep in 1 2 3; do
 for rtt in 0 2ms; do
  for spec in "1000 uniform" "10 uniform" "1 uniform" "1000 zipf"; do
   set -- $spec
   go run ./cmd/outbox-bench drain --dialect postgres -n 200000 --keys $1 --key-skew $2 --broker-rtt $rtt 2>>"$out.err" >> $out || echo "FAILED rtt=$rtt keys=$1 $2" >> "$out.err"
  done
 done
done
echo done
