package deploy

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// root is the module's root, where the Dockerfile and .goreleaser.yaml are.
const root = ".."

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	cmd  string // FROM, RUN, COPY, ... in upper case
	args string
}

// parseDockerfile reads a Dockerfile's instructions, leaving out comments
// and parser directives.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends in a continuation line", path)
	}
	return out
}

// finalStage is the instructions from the last FROM on.
func finalStage(ins []instruction) []instruction {
	last := 0
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	return ins[last:]
}

// shellWords splits a shell command line into words, removing quotes and
// expanding $NAME and ${NAME} from vars (an unknown name fails).
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == 0 && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case quote == 0 && (r == '"' || r == '\''):
			quote, inWord = r, true
			continue
		case quote != 0 && r == quote:
			quote = 0
			continue
		case r == '$' && quote != '\'':
			name, n := varName(rs[i+1:])
			if name == "" {
				return nil, fmt.Errorf("cannot read the variable at %q", string(rs[i:]))
			}
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("unknown variable %s", name)
			}
			w.WriteString(v)
			i += n
			inWord = true
			continue
		}
		w.WriteRune(r)
		inWord = true
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// varName reads NAME or {NAME} at the start of rs and returns it with the
// number of runes it took.
func varName(rs []rune) (string, int) {
	isName := func(r rune) bool {
		return r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
	}
	if len(rs) > 0 && rs[0] == '{' {
		end := slices.Index(rs, '}')
		if end < 2 {
			return "", 0
		}
		for _, r := range rs[1:end] {
			if !isName(r) {
				return "", 0
			}
		}
		return string(rs[1:end]), end + 1
	}
	n := 0
	for n < len(rs) && isName(rs[n]) {
		n++
	}
	return string(rs[:n]), n
}

// goBuild is the Dockerfile's go build step: its environment assignments,
// its arguments after "go build" and the package it builds.
type goBuild struct {
	env  []string // CGO_ENABLED=0, GOOS=linux, ...
	args []string // -trimpath, -ldflags=..., without -o and the package
	pkg  string
}

// testVersion and testCommit are the VERSION and COMMIT build arguments the
// tests give, to see them in relay version.
const (
	testVersion = "v0.0.0-deploytest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// dockerfileBuild finds the RUN with go build in the Dockerfile's build
// stage and reads it with TARGETOS, TARGETARCH (this machine's), VERSION
// and COMMIT set as docker build would.
func dockerfileBuild(t *testing.T) goBuild {
	t.Helper()
	vars := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "VERSION": testVersion, "COMMIT": testCommit}
	var runs []string
	for _, in := range parseDockerfile(t, filepath.Join(root, "Dockerfile")) {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			runs = append(runs, in.args)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("the Dockerfile has %d RUN lines with go build, want 1", len(runs))
	}
	words, err := shellWords(runs[0], vars)
	if err != nil {
		t.Fatalf("Dockerfile: RUN %s: %v", runs[0], err)
	}
	var b goBuild
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
		b.env = append(b.env, words[i])
	}
	if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
		t.Fatalf("Dockerfile: RUN %s: want [VAR=value ...] go build ...", runs[0])
	}
	rest := words[i+2:]
	for j := 0; j < len(rest); j++ {
		switch {
		case rest[j] == "-o":
			j++ // the output, which the tests choose
		case strings.HasPrefix(rest[j], "-"):
			b.args = append(b.args, rest[j])
		case b.pkg == "":
			b.pkg = rest[j]
		default:
			t.Fatalf("Dockerfile: go build builds %s and %s, want one package", b.pkg, rest[j])
		}
	}
	if b.pkg != "./cmd/relay" {
		t.Fatalf("Dockerfile: go build builds %q, want ./cmd/relay", b.pkg)
	}
	return b
}

// ldflags is the value of -ldflags in args.
func ldflags(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			return v
		}
		if a == "-ldflags" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// The relay built as the Dockerfile builds it, once per test binary, in a
// directory other users can read (the binary runs as uid 65532).
var built struct {
	once sync.Once
	dir  string
	path string
	out  string
	err  error
}

// relayBinary builds ./cmd/relay with the Dockerfile's go build line.
func relayBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the relay as the Dockerfile does: skipped in -short mode")
	}
	b := dockerfileBuild(t)
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "outbox-deploy-"); built.err != nil {
			return
		}
		if built.err = os.Chmod(built.dir, 0o755); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "relay")
		args := append(append([]string{"build"}, b.args...), "-o", built.path, b.pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), b.env...)
		out, err := cmd.CombinedOutput()
		built.out = fmt.Sprintf("%s %s: %s", strings.Join(b.env, " "), strings.Join(cmd.Args, " "), out)
		built.err = err
	})
	if built.err != nil {
		t.Fatalf("%s\n%v", built.out, built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// maxBinaryBytes bounds the relay's binary: 25.5 MB on linux/amd64 when
// this was written, 33.2 MB while it linked the demo's broker.
const maxBinaryBytes = 28_000_000

// TestDockerfileBuild runs the Dockerfile's go build line as it is
// written: the binary must be static (no ELF interpreter, no shared
// library), within maxBinaryBytes, and print the VERSION and COMMIT given
// as build arguments in relay version, as the user the image runs as.
func TestDockerfileBuild(t *testing.T) {
	b := dockerfileBuild(t)
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH} {
		if !slices.Contains(b.env, want) {
			t.Errorf("the Dockerfile's go build runs without %s (it has %q)", want, b.env)
		}
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("the Dockerfile's go build has no -trimpath: %q", b.args)
	}
	if f := strings.Fields(ldflags(b.args)); !slices.Contains(f, "-s") || !slices.Contains(f, "-w") {
		t.Errorf("the Dockerfile's -ldflags lack -s -w: %q", ldflags(b.args))
	}
	bin := relayBinary(t)

	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("relay built as the Dockerfile builds it (%s/%s): %d bytes", runtime.GOOS, runtime.GOARCH, st.Size())
	if st.Size() > maxBinaryBytes {
		t.Errorf("the binary is %d bytes, over %d: what did it start to link? (go list -deps ./cmd/relay)", st.Size(), maxBinaryBytes)
	}

	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("the binary has a %v program header: it is not static", p.Type)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("the binary needs shared libraries %q (%v)", libs, err)
		}
	}

	cmd := exec.Command(bin, "version")
	cmd.Env = []string{} // distroless has no environment to speak of
	cmd.Dir = "/"
	uid := dockerUser(t)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	} else {
		t.Logf("not root, so relay version runs as this user (uid %d), not as uid %d: a non-root user all the same", os.Geteuid(), uid)
	}
	out, err := cmd.CombinedOutput()
	if err != nil && errors.Is(err, syscall.EPERM) && cmd.SysProcAttr != nil {
		t.Skipf("cannot run a process as uid %d here (%v): the non-root run is unverified", uid, err)
	}
	if err != nil {
		t.Fatalf("relay version as uid %d: %v\n%s", uid, err, out)
	}
	if cmd.SysProcAttr != nil {
		t.Logf("relay version ran as uid %d", uid)
	}
	want := regexp.MustCompile(`^relay ` + regexp.QuoteMeta(testVersion) + ` \(commit ` + testCommit[:12] + `\) go1\.\d+(\.\d+)?\S* ` +
		runtime.GOOS + "/" + runtime.GOARCH + "\n$")
	if !want.Match(out) {
		t.Errorf("relay version printed %q, want a match for %s", out, want)
	}
}

// dockerUser is the numeric uid of the final stage's USER, which must be
// numeric (runAsNonRoot cannot check a name) and not 0.
func dockerUser(t *testing.T) uint32 {
	t.Helper()
	var user string
	for _, in := range finalStage(parseDockerfile(t, filepath.Join(root, "Dockerfile"))) {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.ParseUint(uid, 10, 32)
	if err != nil || n == 0 {
		t.Fatalf("the Dockerfile's final USER is %q: want a numeric uid other than 0", user)
	}
	return uint32(n)
}

// TestDockerfileStages: the final stage is distroless static (a static
// binary needs nothing else), runs as a numeric non-root user, and has
// relay as its entrypoint; the release image's Dockerfile has the same
// final stage but for where the binary comes from; the builder's Go is at
// least go.mod's.
func TestDockerfileStages(t *testing.T) {
	src := finalStage(parseDockerfile(t, filepath.Join(root, "Dockerfile")))
	rel := finalStage(parseDockerfile(t, "release.Dockerfile"))
	norm := func(ins []instruction) []string {
		var out []string
		for _, in := range ins {
			switch in.cmd {
			case "ARG":
				continue // TARGETPLATFORM, for the COPY
			case "COPY":
				f := strings.Fields(in.args)
				out = append(out, "COPY "+f[len(f)-1]) // where it goes, not where from
			default:
				out = append(out, in.cmd+" "+in.args)
			}
		}
		return out
	}
	if a, b := norm(src), norm(rel); !slices.Equal(a, b) {
		t.Errorf("final stages differ:\nDockerfile:         %q\nrelease.Dockerfile: %q", a, b)
	}
	want := map[string]string{
		"FROM":       "gcr.io/distroless/static-debian12:nonroot",
		"ENTRYPOINT": `["/usr/local/bin/relay"]`,
		"CMD":        `["run"]`,
	}
	for _, in := range src {
		if w, ok := want[in.cmd]; ok {
			if in.args != w {
				t.Errorf("Dockerfile's final %s is %q, want %q", in.cmd, in.args, w)
			}
			delete(want, in.cmd)
		}
	}
	if len(want) > 0 {
		t.Errorf("Dockerfile's final stage lacks %v", want)
	}
	dockerUser(t)
	if !slices.ContainsFunc(src, func(in instruction) bool {
		return in.cmd == "COPY" && strings.HasSuffix(in.args, " /usr/local/bin/relay")
	}) {
		t.Errorf("Dockerfile's final stage does not copy the binary to /usr/local/bin/relay")
	}

	var goVersion string
	for _, in := range parseDockerfile(t, filepath.Join(root, "Dockerfile")) {
		if v, ok := strings.CutPrefix(in.args, "GO_VERSION="); in.cmd == "ARG" && ok {
			goVersion = v
		}
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(mod))
	d := regexp.MustCompile(`^(\d+)\.(\d+)$`).FindStringSubmatch(goVersion)
	if m == nil || d == nil {
		t.Fatalf("go.mod's go line (%q) or the Dockerfile's GO_VERSION (%q) is not major.minor", m, goVersion)
	}
	if atoi(d[1])*1000+atoi(d[2]) < atoi(m[1])*1000+atoi(m[2]) {
		t.Errorf("the Dockerfile builds with Go %s, older than go.mod's go %s.%s", goVersion, m[1], m[2])
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// TestShellWords: the reading of the Dockerfile's RUN line.
func TestShellWords(t *testing.T) {
	vars := map[string]string{"A": "1", "B_C": "x y"}
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{`go build -o /out/relay ./cmd/relay`, []string{"go", "build", "-o", "/out/relay", "./cmd/relay"}, false},
		{`X=$A go -ldflags="-s -X m.v=${B_C}" .`, []string{"X=1", "go", "-ldflags=-s -X m.v=x y", "."}, false},
		{`'$A' "$A"`, []string{"$A", "1"}, false},
		{`$NOPE`, nil, true},
		{`"open`, nil, true},
	} {
		got, err := shellWords(tc.in, vars)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
