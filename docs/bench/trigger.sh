#!/bin/bash
# The enqueue path's trigger alone, without a relay (docs/benchmarks.md, "The database
# under pressure"): pgbench, one transaction = one insert of a 256-byte message into
# outbox_messages, 10 s per point, three rounds interleaved, 32 and 64 clients:
#   off     the trigger disabled
#   notify  a trigger that notifies on every insert (migration 00001's, before 00004)
#   flag    the trigger of migration 00004 with the flag disarmed (0): what a busy
#           writer pays while the relays are awake
# Needs pgbench and a schema migrated by `relay migrate`:
#   psql -h 127.0.0.1 -U postgres -d test -c "CREATE SCHEMA trig"
#   OUTBOX_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=trig' go run ./cmd/relay migrate
#   bash docs/bench/trigger.sh
set -e
DB=${DB:-test}
P="psql -q -h 127.0.0.1 -U postgres -d $DB"
$P -c "CREATE OR REPLACE FUNCTION trig.outbox_notify_always() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_notify('outbox_messages', TG_TABLE_SCHEMA); RETURN NULL; END \$\$"
ins=$(mktemp)
echo "INSERT INTO trig.outbox_messages (message_id, topic, msg_key, key_hash, payload, shard) VALUES (gen_random_uuid()::text, 'orders', '\\x6b6579'::bytea, 42, decode(repeat('ab', 256), 'hex'), 7);" > "$ins"
mode() {
  $P -c "DROP TRIGGER IF EXISTS always_notify ON trig.outbox_messages; ALTER TABLE trig.outbox_messages DISABLE TRIGGER USER"
  case $1 in
  notify) $P -c "CREATE TRIGGER always_notify AFTER INSERT ON trig.outbox_messages FOR EACH STATEMENT EXECUTE FUNCTION trig.outbox_notify_always()" ;;
  flag) $P -c "ALTER TABLE trig.outbox_messages ENABLE TRIGGER USER; SELECT setval('trig.outbox_wake', 0)" >/dev/null ;;
  esac
}
for round in 1 2 3; do
 for c in 32 64; do
  for m in off notify flag; do
   mode $m
   $P -c "TRUNCATE trig.outbox_messages"
   tps=$(pgbench -n -h 127.0.0.1 -U postgres -c $c -j 2 -T 10 -f "$ins" $DB 2>/dev/null | awk '/^tps =/ {print $3; exit}')
   echo "round=$round clients=$c trigger=$m tps=$tps"
  done
 done
done
mode flag
rm -f "$ins"
