-- Overview: the database clock
SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER);
