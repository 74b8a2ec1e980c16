-- Overview: the relays' heartbeats
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ relay_id, heartbeat_at
FROM outbox_relays
ORDER BY relay_id;
