package deploy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/proctest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
	"github.com/outboxrelay/outbox/outboxtest/kafkatest"
)

// The parts of the Kubernetes objects the tests read.
type (
	object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec       yaml.Node         `yaml:"spec"`
		StringData map[string]string `yaml:"stringData"`
		Resources  []string          `yaml:"resources"` // a Kustomization's
	}
	deploymentSpec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot bool   `yaml:"runAsNonRoot"`
			RunAsUser    uint32 `yaml:"runAsUser"`
			RunAsGroup   uint32 `yaml:"runAsGroup"`
			FSGroup      uint32 `yaml:"fsGroup"`
		} `yaml:"securityContext"`
		Volumes []struct {
			Name   string `yaml:"name"`
			Secret *struct {
				SecretName  string `yaml:"secretName"`
				DefaultMode int    `yaml:"defaultMode"`
			} `yaml:"secret"`
		} `yaml:"volumes"`
		InitContainers []container `yaml:"initContainers"`
		Containers     []container `yaml:"containers"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		} `yaml:"securityContext"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		StartupProbe   *probe `yaml:"startupProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	pdbSpec struct {
		MaxUnavailable *int `yaml:"maxUnavailable"`
		MinAvailable   *int `yaml:"minAvailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
)

// manifests reads every object of deploy/kubernetes, by kind (one of
// each).
func manifests(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no kubernetes/*.yaml (%v)", err)
	}
	objs := map[string]object{}
	var listed []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" || o.APIVersion == "" {
				t.Fatalf("%s: an object without kind or apiVersion", f)
			}
			if _, dup := objs[o.Kind]; dup {
				t.Fatalf("%s: a second %s", f, o.Kind)
			}
			objs[o.Kind] = o
		}
		if filepath.Base(f) != "kustomization.yaml" {
			listed = append(listed, filepath.Base(f))
		}
	}
	k, ok := objs["Kustomization"]
	if !ok {
		t.Fatal("kubernetes/ has no kustomization.yaml")
	}
	if got := slices.Sorted(slices.Values(k.Resources)); !slices.Equal(got, listed) {
		t.Errorf("kustomization.yaml lists %q, the directory holds %q", got, listed)
	}
	return objs
}

func decodeSpec[T any](t *testing.T, o object) T {
	t.Helper()
	var v T
	if err := o.Spec.Decode(&v); err != nil {
		t.Fatalf("%s %s: spec: %v", o.Kind, o.Metadata.Name, err)
	}
	return v
}

// help is what the relay's --help of command says: its flags and every
// OUTBOX_* variable it names.
type help struct {
	flags, env map[string]bool
}

func relayHelp(t *testing.T, bin, command string) help {
	t.Helper()
	out, err := exec.Command(bin, command, "--help").Output()
	if err != nil {
		t.Fatalf("relay %s --help: %v", command, err)
	}
	h := help{flags: map[string]bool{}, env: map[string]bool{}}
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z0-9-]+)$`).FindAllStringSubmatch(string(out), -1) {
		h.flags[m[1]] = true
	}
	for _, v := range regexp.MustCompile(`OUTBOX_[A-Z0-9_]+`).FindAllString(string(out), -1) {
		h.env[v] = true
	}
	if len(h.flags) < 3 || !h.env["OUTBOX_DATABASE_URL"] {
		t.Fatalf("relay %s --help lists too little:\n%s", command, out)
	}
	return h
}

// envOf is the container's environment as a map.
func envOf(c container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// flagValue is the value of --name in args, or "".
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// TestKubernetesExample checks the example against the relay it runs:
// every flag and OUTBOX_* variable is one the relay's command accepts, the
// probes are the paths relay run serves on its --http-addr port, secrets
// are files from a Secret volume, the pods run as the image's non-root
// user, requests cover the benchmarks' peak memory, the grace period
// covers the shutdown, and the disruption budget and the Deployment select
// the same pods.
func TestKubernetesExample(t *testing.T) {
	bin := relayBinary(t)
	objs := manifests(t)
	for _, kind := range []string{"Deployment", "PodDisruptionBudget", "Secret"} {
		if _, ok := objs[kind]; !ok {
			t.Fatalf("kubernetes/ has no %s", kind)
		}
	}
	d := decodeSpec[deploymentSpec](t, objs["Deployment"])
	pod := d.Template.Spec
	if d.Replicas < 2 {
		t.Errorf("replicas: %d, want 2 or more", d.Replicas)
	}
	for k, v := range d.Selector.MatchLabels {
		if d.Template.Metadata.Labels[k] != v {
			t.Errorf("the Deployment's selector %s=%s does not match its pods", k, v)
		}
	}
	pdb := decodeSpec[pdbSpec](t, objs["PodDisruptionBudget"])
	if !maps(pdb.Selector.MatchLabels, d.Selector.MatchLabels) {
		t.Errorf("the PodDisruptionBudget selects %v, the Deployment %v", pdb.Selector.MatchLabels, d.Selector.MatchLabels)
	}
	if (pdb.MaxUnavailable == nil) == (pdb.MinAvailable == nil) ||
		pdb.MaxUnavailable != nil && (*pdb.MaxUnavailable < 1 || *pdb.MaxUnavailable >= d.Replicas) ||
		pdb.MinAvailable != nil && (*pdb.MinAvailable < 1 || *pdb.MinAvailable >= d.Replicas) {
		t.Errorf("the PodDisruptionBudget must let one relay go and keep one: %+v with %d replicas", pdb, d.Replicas)
	}

	uid := dockerUser(t)
	sc := pod.SecurityContext
	if !sc.RunAsNonRoot || sc.RunAsUser != uid || sc.RunAsGroup != uid || sc.FSGroup != uid {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and user, group and fsGroup %d (the image's USER)", sc, uid)
	}
	secretVolumes := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = true
			if v.Secret.SecretName != objs["Secret"].Metadata.Name {
				t.Errorf("volume %s mounts Secret %q, the example's is %q", v.Name, v.Secret.SecretName, objs["Secret"].Metadata.Name)
			}
			if v.Secret.DefaultMode&0o077 != 0o040 {
				t.Errorf("volume %s: defaultMode %#o: want the group (fsGroup) to read and others not", v.Name, v.Secret.DefaultMode)
			}
		}
	}

	peak := peakRSSMiB(t)
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("want one init container (relay migrate) and one container (relay run), got %d and %d", len(pod.InitContainers), len(pod.Containers))
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if len(c.Args) == 0 {
			t.Fatalf("container %s has no args", c.Name)
		}
		h := relayHelp(t, bin, c.Args[0])
		for _, a := range c.Args[1:] {
			if name, ok := strings.CutPrefix(a, "--"); ok {
				name, _, _ = strings.Cut(name, "=")
				if !h.flags[name] {
					t.Errorf("container %s: relay %s has no flag --%s", c.Name, c.Args[0], name)
				}
			}
		}
		env := envOf(c)
		for name, value := range env {
			if strings.HasPrefix(name, "OUTBOX_") && !h.env[name] {
				t.Errorf("container %s: relay %s reads no %s", c.Name, c.Args[0], name)
			}
			if name == "OUTBOX_DATABASE_URL" || name == "OUTBOX_KAFKA_SASL_PASSWORD" {
				t.Errorf("container %s: %s holds a secret in the pod spec: use %s_FILE", c.Name, name, name)
			}
			if strings.HasSuffix(name, "_FILE") && !slices.ContainsFunc(c.VolumeMounts, func(m struct {
				Name      string `yaml:"name"`
				MountPath string `yaml:"mountPath"`
			}) bool {
				return secretVolumes[m.Name] && strings.HasPrefix(value, m.MountPath+"/")
			}) {
				t.Errorf("container %s: %s=%s is not in a Secret volume it mounts", c.Name, name, value)
			}
		}
		if env["OUTBOX_DATABASE_URL_FILE"] == "" && flagValue(c.Args, "database-url-file") == "" {
			t.Errorf("container %s: no database URL file", c.Name)
		}
		if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation || !c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("container %s: want allowPrivilegeEscalation false and readOnlyRootFilesystem", c.Name)
		}
		req, lim := mebibytes(t, c.Resources.Requests["memory"]), mebibytes(t, c.Resources.Limits["memory"])
		if req < peak || lim < 2*req || c.Resources.Requests["cpu"] == "" {
			t.Errorf("container %s: memory request %v MiB, limit %v MiB, cpu %q: want a request of at least the benchmarks' peak RSS (%v MiB), a limit of twice the request, a cpu request",
				c.Name, req, lim, c.Resources.Requests["cpu"], peak)
		}
		if c.Image != pod.Containers[0].Image {
			t.Errorf("container %s runs %s, the relay %s", c.Name, c.Image, pod.Containers[0].Image)
		}
	}
	if a := pod.InitContainers[0].Args; a[0] != "migrate" {
		t.Errorf("the init container runs relay %s, want migrate", a[0])
	}

	c := pod.Containers[0]
	if c.Args[0] != "run" {
		t.Fatalf("the container runs relay %s, want run", c.Args[0])
	}
	addr := flagValue(c.Args, "http-addr")
	if addr == "" {
		addr = envOf(c)["OUTBOX_HTTP_ADDR"]
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("the relay's --http-addr %q: %v", addr, err)
	}
	for _, p := range []struct {
		name string
		p    *probe
		path string
	}{{"startupProbe", c.StartupProbe, "/healthz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if p.p == nil || p.p.HTTPGet == nil {
			t.Errorf("%s is not an HTTP probe", p.name)
			continue
		}
		if p.p.HTTPGet.Path != p.path {
			t.Errorf("%s asks %s, want %s", p.name, p.p.HTTPGet.Path, p.path)
		}
		if containerPort(c, p.p.HTTPGet.Port) != port {
			t.Errorf("%s asks port %s, which is not --http-addr's %s", p.name, p.p.HTTPGet.Port, port)
		}
	}
	shutdown := 10 * time.Second
	if s := envOf(c)["OUTBOX_SHUTDOWN_TIMEOUT"]; s != "" {
		if shutdown, err = time.ParseDuration(s); err != nil {
			t.Fatalf("OUTBOX_SHUTDOWN_TIMEOUT: %v", err)
		}
	}
	// After the batch: the shards handed back and the producer closed,
	// each bounded to 2 s (README, SIGTERM).
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace < shutdown+4*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v is shorter than the shutdown timeout %v + 4s", grace, shutdown)
	}
}

// containerPort is the number of a probe's port, given by name or number.
func containerPort(c container, port string) string {
	for _, p := range c.Ports {
		if p.Name == port {
			return strconv.Itoa(p.ContainerPort)
		}
	}
	return port
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// mebibytes reads a Kubernetes memory quantity in Mi or Gi.
func mebibytes(t *testing.T, q string) float64 {
	t.Helper()
	for suffix, f := range map[string]float64{"Mi": 1, "Gi": 1024} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			if v, err := strconv.ParseFloat(n, 64); err == nil {
				return v * f
			}
		}
	}
	t.Errorf("memory quantity %q: want a number of Mi or Gi", q)
	return 0
}

// peakRSSMiB is the highest peak RSS of docs/benchmarks.md's memory table.
func peakRSSMiB(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "| dialect | peak RSS MiB |")
	if !ok {
		t.Fatal("docs/benchmarks.md has no memory table (| dialect | peak RSS MiB |)")
	}
	peak := 0.0
	for _, m := range regexp.MustCompile(`(?m)^\| [^|]+ \| ([0-9.]+) \(`).FindAllStringSubmatch(strings.SplitN(table, "\n\n", 2)[0], -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		peak = max(peak, v)
	}
	if peak == 0 {
		t.Fatal("no figure in docs/benchmarks.md's memory table")
	}
	return peak
}

// TestKubernetesExampleRuns runs the example's two containers as the pod
// would, with the relay built as the Dockerfile builds it: the Secret's
// database URL is a file of mode defaultMode, owned by the fsGroup, in a
// directory standing for the mount; the process runs as the pod's user
// (when the test runs as root) with only the container's environment; the
// brokers are a Kafka-protocol broker on loopback, the database a fresh
// PostgreSQL schema, and --http-addr a free port on loopback. relay migrate
// must succeed, then relay run must answer its probes' paths with 200 and
// exit 0 on SIGTERM within the grace period.
func TestKubernetesExampleRuns(t *testing.T) {
	bin := relayBinary(t)
	objs := manifests(t)
	pod := decodeSpec[deploymentSpec](t, objs["Deployment"]).Template.Spec
	db := dbtest.OpenEmpty(t, dialect.NamePostgres)
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	broker := kafkatest.New(t, 2)

	mountDir, err := os.MkdirTemp("", "outbox-deploy-secrets-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(mountDir) })
	if err := os.Chmod(mountDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var mode os.FileMode
	var secretVolume string
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			mode, secretVolume = os.FileMode(v.Secret.DefaultMode), v.Name
		}
	}
	secretFile := filepath.Join(mountDir, "database-url")
	if err := os.WriteFile(secretFile, []byte(u.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	asRoot := os.Geteuid() == 0
	if asRoot { // as the kubelet lays out a Secret volume with fsGroup
		if err := os.Chown(secretFile, 0, int(pod.SecurityContext.FSGroup)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(secretFile, mode); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	// command is c's process: its args and environment, with the secret
	// mount, the brokers and the HTTP address pointing at this test's.
	command := func(c container) *exec.Cmd {
		args := slices.Clone(c.Args)
		for i := range args {
			if i > 0 && args[i-1] == "--http-addr" {
				args[i] = "127.0.0.1:" + port
			}
		}
		cmd := exec.Command(bin, args...)
		cmd.Dir = "/"
		cmd.Env = []string{}
		for _, e := range c.Env {
			v := e.Value
			for _, m := range c.VolumeMounts {
				if rest, ok := strings.CutPrefix(v, m.MountPath+"/"); ok && m.Name == secretVolume {
					if rest != "database-url" {
						t.Fatalf("container %s reads %s from the Secret: this test provides database-url only", c.Name, rest)
					}
					v = filepath.Join(mountDir, rest)
				}
			}
			switch e.Name {
			case "OUTBOX_KAFKA_BROKERS":
				v = strings.Join(broker.Brokers(), ",")
			case "OUTBOX_HTTP_ADDR":
				v = "127.0.0.1:" + port
			}
			cmd.Env = append(cmd.Env, e.Name+"="+v)
		}
		if asRoot {
			sc := pod.SecurityContext
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: sc.RunAsUser, Gid: sc.RunAsGroup, Groups: []uint32{sc.FSGroup}}}
		}
		return cmd
	}

	migrate := command(pod.InitContainers[0])
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("init container: relay %s: %v\n%s", strings.Join(migrate.Args[1:], " "), err, out)
	}
	if !asRoot {
		t.Logf("not root: the containers run as this user (uid %d), not as uid %d", os.Geteuid(), pod.SecurityContext.RunAsUser)
	}

	c := pod.Containers[0]
	var out proctest.Buffer
	run := command(c)
	run.Stdout, run.Stderr = &out, &out
	p, err := proctest.Start(run)
	if err != nil {
		t.Fatalf("relay run: %v", err)
	}
	t.Cleanup(func() { p.Kill(5 * time.Second) })
	for _, probe := range []*probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		target := "http://127.0.0.1:" + port + probe.HTTPGet.Path
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, body := get(target)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) || p.Exited() {
				t.Fatalf("%s answered %d %q, not 200, for 60s\nrelay run:\n%s", probe.HTTPGet.Path, code, body, out.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	if !p.Wait(grace) || p.ExitCode() != 0 {
		t.Fatalf("relay run did not exit 0 within the grace period %v after SIGTERM (exited: %v, status %d)\n%s", grace, p.Exited(), p.ExitCode(), out.String())
	}
	if strings.Contains(out.String(), u.String()) {
		t.Errorf("relay run printed the database URL")
	}
}

// get is the status and body of a GET of target, or 0 and the error.
func get(target string) (int, string) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(target)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, string(b)
}

// freePort is a TCP port on loopback that nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
