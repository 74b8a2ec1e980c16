#!/bin/bash
# Three rounds of every scenario on every dialect, one at a time.
# Usage: docs/bench/run.sh [results.jsonl]; then python3 docs/bench/table.py results.jsonl
# (median of the three runs of each figure, with the range).
out=$(realpath -m "${1:-/tmp/outbox-bench-results.jsonl}")
cd "$(dirname "$0")/../.."
ob=$(mktemp -d)/outbox-bench
go build -o "$ob" ./cmd/outbox-bench
: > $out
for round in 1 2 3; do
  for d in postgres mysql sqlite; do
    for sc in drain latency enqueue memory idle; do
      start=$(date +%s.%N)
      line=$("$ob" $sc --dialect $d 2>>"$out.stderr")
      rc=$?
      end=$(date +%s.%N)
      echo "$line" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['round']=$round; d['wall_seconds']=round($end-$start,1); d['exit']=$rc; print(json.dumps(d))" >> $out || echo "{\"scenario\":\"$sc\",\"dialect\":\"$d\",\"round\":$round,\"exit\":$rc,\"broken\":true}" >> $out
    done
  done
done

