package deploy

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// goreleaserConfig is the part of .goreleaser.yaml the tests read.
type goreleaserConfig struct {
	Version int `yaml:"version"`
	Builds  []struct {
		ID      string   `yaml:"id"`
		Main    string   `yaml:"main"`
		Binary  string   `yaml:"binary"`
		Env     []string `yaml:"env"`
		Flags   []string `yaml:"flags"`
		Ldflags []string `yaml:"ldflags"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
	} `yaml:"builds"`
	Archives []struct {
		IDs   []string `yaml:"ids"`
		Files []string `yaml:"files"`
	} `yaml:"archives"`
	Dockers []struct {
		IDs        []string `yaml:"ids"`
		Dockerfile string   `yaml:"dockerfile"`
		Images     []string `yaml:"images"`
		Tags       []string `yaml:"tags"`
		Platforms  []string `yaml:"platforms"`
	} `yaml:"dockers_v2"`
}

// rawDockerfileBuild is dockerfileBuild with the build arguments left as
// ${VERSION} and ${COMMIT}, to compare with goreleaser's templates.
func rawDockerfileBuild(t *testing.T) goBuild {
	t.Helper()
	var run string
	for _, in := range parseDockerfile(t, filepath.Join(root, "Dockerfile")) {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			run = in.args
		}
	}
	words, err := shellWords(run, map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "VERSION": "${VERSION}", "COMMIT": "${COMMIT}"})
	if err != nil {
		t.Fatal(err)
	}
	var b goBuild
	for i := 0; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-o":
			i++
		case strings.HasPrefix(w, "-"):
			b.args = append(b.args, w)
		case strings.Contains(w, "=") && b.args == nil:
			b.env = append(b.env, w)
		case w != "go" && w != "build":
			b.pkg = w
		}
	}
	return b
}

// TestGoreleaserConfig: the release builds relay for linux and darwin on
// amd64 and arm64 with the Dockerfile's environment, flags and -ldflags
// (goreleaser's {{ .Tag }} and {{ .FullCommit }} where the Dockerfile has
// ${VERSION} and ${COMMIT}), and its image from deploy/release.Dockerfile
// for linux/amd64 and linux/arm64, under the name the Kubernetes example
// runs.
func TestGoreleaserConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg goreleaserConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if cfg.Version != 2 {
		t.Errorf(".goreleaser.yaml: version %d, want 2", cfg.Version)
	}
	if len(cfg.Builds) != 1 {
		t.Fatalf(".goreleaser.yaml: %d builds, want 1 (relay)", len(cfg.Builds))
	}
	build := cfg.Builds[0]
	docker := rawDockerfileBuild(t)
	if build.Main != docker.pkg || build.Binary != "relay" {
		t.Errorf("the release builds %s as %s; the Dockerfile builds %s as relay", build.Main, build.Binary, docker.pkg)
	}
	// The Dockerfile's environment but GOOS and GOARCH, which goreleaser
	// sets per target.
	var env []string
	for _, e := range docker.env {
		if !strings.HasPrefix(e, "GOOS=") && !strings.HasPrefix(e, "GOARCH=") {
			env = append(env, e)
		}
	}
	if !slices.Equal(build.Env, env) {
		t.Errorf("the release builds with env %q, the Dockerfile with %q", build.Env, env)
	}
	var flags []string
	for _, a := range docker.args {
		if !strings.HasPrefix(a, "-ldflags") {
			flags = append(flags, a)
		}
	}
	if !slices.Equal(build.Flags, flags) {
		t.Errorf("the release builds with flags %q, the Dockerfile with %q", build.Flags, flags)
	}
	ld := strings.NewReplacer("{{ .Tag }}", "${VERSION}", "{{ .FullCommit }}", "${COMMIT}").Replace(strings.Join(build.Ldflags, " "))
	if ld != ldflags(docker.args) {
		t.Errorf("the release's -ldflags %q are not the Dockerfile's %q", ld, ldflags(docker.args))
	}
	for _, want := range [][2]string{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}} {
		if !slices.Contains(build.Goos, want[0]) || !slices.Contains(build.Goarch, want[1]) {
			t.Errorf("the release does not build %s/%s", want[0], want[1])
		}
	}
	for _, a := range cfg.Archives {
		for _, f := range a.Files {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("an archive holds %s: %v", f, err)
			}
		}
	}

	if len(cfg.Dockers) != 1 {
		t.Fatalf(".goreleaser.yaml: %d dockers_v2 images, want 1", len(cfg.Dockers))
	}
	img := cfg.Dockers[0]
	if img.Dockerfile != "deploy/release.Dockerfile" || !slices.Equal(img.IDs, []string{build.ID}) {
		t.Errorf("the image is built from %s with builds %q; want deploy/release.Dockerfile with %q", img.Dockerfile, img.IDs, build.ID)
	}
	if !slices.Equal(img.Platforms, []string{"linux/amd64", "linux/arm64"}) || len(img.Tags) == 0 {
		t.Errorf("the image's platforms are %q and tags %q; want linux/amd64 and linux/arm64, and a tag", img.Platforms, img.Tags)
	}
	// deploy/release.Dockerfile copies $TARGETPLATFORM/<binary>.
	copied := false
	for _, in := range finalStage(parseDockerfile(t, "release.Dockerfile")) {
		if in.cmd == "COPY" && strings.HasPrefix(in.args, "$TARGETPLATFORM/"+build.Binary+" ") {
			copied = true
		}
	}
	if !copied {
		t.Errorf("release.Dockerfile does not COPY $TARGETPLATFORM/%s, where goreleaser puts the binary", build.Binary)
	}
	pod := decodeSpec[deploymentSpec](t, manifests(t)["Deployment"]).Template.Spec
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		repo, _, _ := strings.Cut(c.Image, ":")
		if !slices.Contains(img.Images, repo) {
			t.Errorf("the Kubernetes example runs %s, the release pushes %q", c.Image, img.Images)
		}
	}
}
