-- Now: the database clock (the relay's clock offset, for the commit-to-publish delay)
SELECT now();
