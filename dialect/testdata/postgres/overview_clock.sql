-- Overview: the database clock
SELECT now();
