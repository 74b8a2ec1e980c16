#!/bin/bash
out=${1:-hotkeys.jsonl}
: > $out
for rep in 1 2 3; do
 for rtt in 0 2ms; do
  for spec in "1000 uniform" "10 uniform" "1 uniform" "1000 zipf"; do
   set -- $spec
   go run ./cmd/outbox-bench drain --dialect postgres -n 200000 --keys $1 --key-skew $2 --broker-rtt $rtt 2>>"$out.err" >> $out || echo "FAILED rtt=$rtt keys=$1 $2" >> /tmp/bench11.err
  done
 done
done
echo done
