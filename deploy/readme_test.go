package deploy

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestREADMEDeploy: the README's Deploy section links files that exist and
// gives the size of the binary the Dockerfile builds, in MB, right for
// linux/amd64.
func TestREADMEDeploy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Deploy\n")
	if !ok {
		t.Fatal("README.md has no Deploy section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	links := regexp.MustCompile(`\]\(([^)#]+)\)`).FindAllStringSubmatch(section, -1)
	if len(links) < 4 {
		t.Errorf("the Deploy section links %d files, want the Dockerfile, deploy/kubernetes, .goreleaser.yaml and docs/deploy.md", len(links))
	}
	for _, l := range links {
		if _, err := os.Stat(filepath.Join(root, l[1])); err != nil {
			t.Errorf("the Deploy section links %s: %v", l[1], err)
		}
	}
	m := regexp.MustCompile(`(\d+) MB for linux/amd64`).FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the Deploy section does not give the binary's size (N MB for linux/amd64)")
	}
	if runtime.GOOS+"/"+runtime.GOARCH != "linux/amd64" {
		t.Skipf("the size is for linux/amd64, this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	st, err := os.Stat(relayBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if said, _ := strconv.Atoi(m[1]); said != int(math.Round(float64(st.Size())/1e6)) {
		t.Errorf("README says %s MB; the binary is %d bytes", m[1], st.Size())
	}
}
