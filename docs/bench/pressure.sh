#!/bin/bash
# The tables of "The database under pressure" in docs/benchmarks.md: on PostgreSQL
# three interleaved repetitions, on MariaDB one (its held runs take long), of drain
# with and without a held snapshot, commit (the application's side, with the wake-up
# after a minute idle) and pressure --measure latency on a fresh table and after a
# churn under a held snapshot (1,000,000 messages on PostgreSQL; 200,000 on MariaDB,
# whose relay drains at about 2,000 msg/s under a held snapshot). Run from the
# repository root:
#   bash docs/bench/pressure.sh out.jsonl
# then: python3 docs/bench/pressure_table.py out.jsonl
out=${1:-pressure.jsonl}
: > "$out"
go build -o /tmp/outbox-bench ./cmd/outbox-bench || exit 1
run() { /tmp/outbox-bench "$@" 2>>"$out.err" >> "$out" || echo "FAILED $*" >> "$out.err"; }
one() { # dialect churn
  run drain --dialect $1 -n 200000
  run drain --dialect $1 -n 200000 --hold
  run commit --dialect $1 --writers 1,8,32,64 --duration 10s --idle-before-wake 60s --wakes 20
  run pressure --dialect $1 --measure latency --hold=false --churn 0 --rate 1000 --duration 30s
  run pressure --dialect $1 --measure latency --churn $2 --rate 1000 --duration 30s
}
for rep in 1 2 3; do one postgres 1000000; done
one mysql 200000
echo done >> "$out.err"
