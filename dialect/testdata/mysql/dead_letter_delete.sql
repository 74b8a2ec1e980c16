-- DeadLetter (transaction): delete them
/*M! SET STATEMENT max_statement_time=30.000 FOR */ DELETE m
FROM JSON_TABLE('[101,102]', '$[*]' COLUMNS (id BIGINT PATH '$')) AS x STRAIGHT_JOIN outbox_messages AS m FORCE INDEX (PRIMARY) ON m.id = x.id;
