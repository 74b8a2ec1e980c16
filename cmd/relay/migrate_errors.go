package main

import (
	"errors"
	"fmt"
	"path"

	"github.com/go-sql-driver/mysql"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"

	"github.com/outboxrelay/outbox/migrations"
)

// migrateError is an error of relay migrate told as what to do. It wraps
// the error of the driver or of goose, for errors.Is and errors.As.
type migrateError struct {
	msg string
	err error
}

func (e *migrateError) Error() string { return e.msg }
func (e *migrateError) Unwrap() error { return e.err }

// explainMigrateError rewrites the common errors of relay migrate on the
// database display (its URL without the password) into what to do: no
// schema to create in, a missing privilege, the migration lock held by
// another migrator for all of --lock-timeout, a migration that failed partway.
// Other errors are returned with the database's name in front.
func explainMigrateError(err error, display string) error {
	if err == nil {
		return nil
	}
	cause := err
	var partial *goose.PartialError
	where := ""
	if errors.As(err, &partial) && partial.Failed != nil && partial.Failed.Source != nil {
		src := partial.Failed.Source
		where = fmt.Sprintf("migration %d (%s) failed, after %d applied in this run; ", src.Version, path.Base(src.Path), len(partial.Applied))
		cause = partial.Err
	}
	var lockErr *migrations.LockTimeoutError
	var pqErr *pq.Error
	var myErr *mysql.MySQLError
	switch {
	case errors.As(err, &lockErr):
		return &migrateError{err: err, msg: fmt.Sprintf(
			"%s: another relay migrate (or an application migrating the outbox tables) holds the migration lock; waited %s (--lock-timeout): run it again when that one has finished",
			display, lockErr.Waited)}
	case errors.As(cause, &pqErr) && pqErr.Code == "3F000":
		return &migrateError{err: err, msg: fmt.Sprintf(
			"%s: %sno schema to create the outbox tables in: the user's search_path names no schema that exists; set one in the URL (?search_path=app) or create it (CREATE SCHEMA app AUTHORIZATION <user>) (%s)",
			display, where, pqErr.Message)}
	case errors.As(cause, &pqErr) && pqErr.Code == "42501":
		return &migrateError{err: err, msg: fmt.Sprintf(
			"%s: %sthe user may not create the outbox tables: it needs CREATE on the schema of its search_path (GRANT CREATE ON SCHEMA public TO <user>), or run relay migrate as the schema's owner (%s)",
			display, where, pqErr.Message)}
	case errors.As(cause, &myErr) && (myErr.Number == 1044 || myErr.Number == 1142 || myErr.Number == 1227):
		return &migrateError{err: err, msg: fmt.Sprintf(
			"%s: %sthe user may not create the outbox tables: it needs CREATE, ALTER, INDEX, SELECT, INSERT, UPDATE and DELETE on the database (GRANT ... ON <database>.* TO <user>), or run relay migrate as a user that has them (%s)",
			display, where, myErr.Message)}
	case where != "":
		return &migrateError{err: err, msg: fmt.Sprintf(
			"%s: %sthe migrations before it stay applied; fix the cause and run relay migrate again, which goes on from migration %d: %v",
			display, where, partial.Failed.Source.Version, cause)}
	}
	return fmt.Errorf("%s: %w", display, err)
}
