package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's configuration table must list every flag of relay run, with
// its environment variable: keep the front door true.
func TestREADMEListsEveryRunFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := realMain([]string{"run", "--help"}, &out, &errOut, func(string) string { return "" }); code != 0 {
		t.Fatalf("run --help exited %d", code)
	}
	flags := regexp.MustCompile(`(?m)^  --([a-z0-9-]+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(flags) < 20 {
		t.Fatalf("found only %d flags in run --help:\n%s", len(flags), out.String())
	}
	for _, f := range flags {
		name := f[1]
		if !strings.Contains(string(readme), "`--"+name+"`") {
			t.Errorf("README.md does not document --%s", name)
		}
		if !strings.Contains(string(readme), "`"+envName(name)+"`") {
			t.Errorf("README.md does not document %s", envName(name))
		}
	}
}
