-- Now: the database clock (the relay's clock offset, for the commit-to-publish delay)
SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER);
