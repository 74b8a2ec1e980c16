#!/bin/bash
# The tables of "The database under pressure" in docs/benchmarks.md: three
# interleaved repetitions, on PostgreSQL and MariaDB, of drain with and without a
# held snapshot, commit (the application's side, with the wake-up after a minute
# idle) and pressure --measure latency on a fresh table and after 1,000,000
# messages churned under a held snapshot. Run from the repository root:
#   bash docs/bench/pressure.sh out.jsonl
# then: python3 docs/bench/pressure_table.py out.jsonl
out=${1:-pressure.jsonl}
: > "$out"
go build -o /tmp/outbox-bench ./cmd/outbox-bench || exit 1
run() { /tmp/outbox-bench "$@" 2>>"$out.err" >> "$out" || echo "FAILED $*" >> "$out.err"; }
for rep in 1 2 3; do
 for d in postgres mysql; do
  run drain --dialect $d -n 200000
  run drain --dialect $d -n 200000 --hold
  run commit --dialect $d --writers 1,8,32,64 --duration 10s --idle-before-wake 60s --wakes 20
  run pressure --dialect $d --measure latency --hold=false --churn 0 --rate 1000 --duration 30s
  run pressure --dialect $d --measure latency --churn 1000000 --rate 1000 --duration 30s
 done
done
echo done >> "$out.err"
