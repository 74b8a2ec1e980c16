package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/admin"
)

const showAbout = `Prints one dead letter whole: its message id, topic, shard, attempts, times,
last error, headers, key and payload. Keys, header values and payloads are
printed as text when they are printable UTF-8, else in hexadecimal (--binary
hex, the default) or base64 (--binary base64).`

func dlqShow(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newAdminFlagSet("dlq show", showAbout, "  relay dlq show 42\n  relay dlq show 42 --binary base64", stdout)
	af := addAdminFlags(fs)
	binary := fs.String("binary", "hex", "how to print bytes that are not printable text: hex or base64")
	rest, err := parseFlagsArgs(fs, args, adminEnv(getenv))
	if err != nil {
		return err
	}
	if *binary != "hex" && *binary != "base64" {
		return fmt.Errorf("%w: --binary must be hex or base64, got %q", ErrUsage, *binary)
	}
	ids, err := parseIDs(rest)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return fmt.Errorf("%w: dlq show takes one id (example: relay dlq show 42)", ErrUsage)
	}
	return af.withAdmin(getenv, func(ctx context.Context, a *admin.Admin, where string) error {
		x, err := a.GetDeadLetter(ctx, ids[0])
		if err != nil {
			return selectionError(where, err)
		}
		printDeadLetter(stdout, x, *binary)
		return nil
	})
}

// printDeadLetter prints x whole, as dlq show does; bytes that are not
// printable text in the binary form ("hex" or "base64").
func printDeadLetter(stdout io.Writer, x admin.DeadLetter, binary string) {
	show := func(b []byte, null bool) string { return printable(b, null, binary) }
	fmt.Fprintf(stdout, "id:          %d\nmessage id:  %s\ntopic:       %s\nshard:       %d\nattempts:    %d\n",
		x.ID, clean(x.MessageID), clean(x.Topic), x.Shard, x.Attempts)
	fmt.Fprintf(stdout, "created at:  %s\ndead at:     %s\nlast error:  %s\n",
		x.CreatedAt.UTC().Format(time.RFC3339Nano), x.DeadAt.UTC().Format(time.RFC3339Nano), cleanKeeping(x.LastError, "\n\t"))
	hs, err := outbox.DecodeHeaders(x.Headers)
	if err != nil {
		fmt.Fprintf(stdout, "headers:     (undecodable: %v) %s\n", err, show(x.Headers, false))
	} else {
		fmt.Fprintf(stdout, "headers:     %d\n", len(hs))
		for _, h := range hs {
			fmt.Fprintf(stdout, "  %s: %s\n", clean(h.Key), show(h.Value, false))
		}
	}
	fmt.Fprintf(stdout, "key:         %s\n", show(x.Key, x.Key == nil))
	fmt.Fprintf(stdout, "payload:     %s\n", show(x.Value, x.Value == nil))
}

// printable returns b as text when it is printable UTF-8 (with line breaks
// and tabs), else in the binary form ("hex" or "base64"), labelled.
func printable(b []byte, null bool, form string) string {
	if null {
		return "(null)"
	}
	if len(b) == 0 {
		return `""`
	}
	if utf8.Valid(b) {
		ok := true
		for _, r := range string(b) {
			if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
				ok = false
				break
			}
		}
		if ok {
			return string(b)
		}
	}
	if form == "base64" {
		return fmt.Sprintf("(%d bytes, base64) %s", len(b), base64.StdEncoding.EncodeToString(b))
	}
	return fmt.Sprintf("(%d bytes, hex) %s", len(b), hex.EncodeToString(b))
}
