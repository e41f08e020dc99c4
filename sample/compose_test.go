package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cqrskit/cqrskit/sample/infra"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
)

// No Docker engine runs in CI, so the container files are kept honest by
// construction: these tests read docker-compose.yml and the Dockerfile and
// check every flag, variable, port, health check and role against the
// binary's own flag set.

// composeFile models the keys docker-compose.yml uses; decoding rejects
// any other, so a misspelt key ("enviroment") fails instead of being
// ignored by the test and by Compose alike.
type composeFile struct {
	App      composeService            `yaml:"x-app"` // the anchor merged into the app's services
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Restart     string            `yaml:"restart"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true) // a misspelt key is an error, not a silent no-op
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// dockerfile is what the tests need from the Dockerfile.
type dockerfile struct {
	stages      []string // FROM lines
	entrypoint  string
	user        string
	expose      []string
	healthcheck []string // the CMD's exec form
	env         map[string]string
	text        string
}

// readDockerfile parses the few instructions the tests check. Continuation
// lines are joined; exec forms are JSON arrays of plain strings.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{env: map[string]string{}, text: string(data)}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	cont := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		lines = append(lines, cont+line)
		cont = ""
	}
	execForm := regexp.MustCompile(`"([^"]*)"`)
	exec := func(s string) []string {
		var out []string
		for _, m := range execForm.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		return out
	}
	args := map[string]string{} // ARGs before the first FROM, with their defaults
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "ARG":
			if len(d.stages) == 0 {
				k, v, _ := strings.Cut(rest, "=")
				args[k] = v
			}
		case "FROM":
			// FROM ${GO_IMAGE}: the default a build without --build-arg uses.
			rest = regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(rest, func(ref string) string {
				return args[ref[2:len(ref)-1]]
			})
			d.stages = append(d.stages, rest)
			// only the final stage's count
			d.user, d.entrypoint, d.env = "", "", map[string]string{}
		case "USER":
			d.user = rest
		case "ENTRYPOINT":
			if e := exec(rest); len(e) > 0 {
				d.entrypoint = e[0]
			}
		case "EXPOSE":
			d.expose = strings.Fields(rest)
		case "HEALTHCHECK":
			if _, cmd, ok := strings.Cut(rest, "CMD "); ok {
				d.healthcheck = exec(cmd)
			}
		case "ENV":
			k, v, _ := strings.Cut(rest, "=")
			d.env[k] = v
		}
	}
	return d
}

// parse parses args and env with the binary's flag set, as main does.
func parse(t *testing.T, args []string, env map[string]string) (infra.Config, *infra.Flags) {
	t.Helper()
	fs, flags := infra.NewFlagSet("sample", func(k string) string { return env[k] })
	fs.SetOutput(&strings.Builder{})
	if err := fs.Parse(args); err != nil {
		t.Fatalf("the binary rejects %q: %v", args, err)
	}
	if fs.NArg() > 0 {
		t.Fatalf("the binary takes no positional arguments, got %q", fs.Args())
	}
	if flags.Probe != "" {
		return infra.Config{}, flags
	}
	cfg, err := flags.Config()
	if err != nil {
		t.Fatalf("the binary rejects %q with environment %v: %v", args, env, err)
	}
	return cfg, flags
}

// checkProbe checks a health check command: the binary's --probe of a
// health endpoint on port.
func checkProbe(t *testing.T, test []string, binary, port string) {
	t.Helper()
	if len(test) < 2 || test[0] != binary {
		t.Fatalf("health check %q: want [%s --probe=http://127.0.0.1:%s/readyz]", test, binary, port)
	}
	_, flags := parse(t, test[1:], nil)
	u, err := url.Parse(flags.Probe)
	if err != nil || flags.Probe == "" {
		t.Fatalf("health check %q: no --probe URL", test)
	}
	if u.Port() != port {
		t.Errorf("health check %q probes port %q; the service listens on %s", test, u.Port(), port)
	}
	// The path must be one every role serves with 200.
	h, err := httpapi.NewHandler(httpapi.HandlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u.Path, nil))
	if rec.Code != http.StatusOK {
		t.Errorf("health check %q: GET %s answers %d", test, u.Path, rec.Code)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("addr %q: %v", addr, err)
	}
	return port
}

func TestComposeMatchesBinary(t *testing.T) {
	c := readCompose(t)
	d := readDockerfile(t)
	knownEnv := map[string]bool{}
	for _, v := range infra.Env {
		knownEnv[v] = true
	}
	roles := map[infra.Role]bool{}
	for name, svc := range c.Services {
		if svc.Build == nil {
			continue // postgres, nats: checked below
		}
		t.Run(name, func(t *testing.T) {
			for k := range svc.Environment {
				if !knownEnv[k] {
					t.Errorf("environment variable %s is not one the binary reads (%v)", k, slices.Sorted(mapKeys(knownEnv)))
				}
			}
			// The image's own ENV applies too.
			env := map[string]string{}
			for k, v := range d.env {
				env[k] = v
			}
			for k, v := range svc.Environment {
				env[k] = v
			}
			cfg, _ := parse(t, svc.Command, env)
			if !slices.Contains(infra.Roles, cfg.Role) {
				t.Errorf("role %q is not one the binary accepts", cfg.Role)
			}
			roles[cfg.Role] = true
			port := portOf(t, cfg.Addr)
			for _, p := range svc.Ports {
				parts := strings.Split(p, ":")
				if container := parts[len(parts)-1]; container != port {
					t.Errorf("ports %q: container port %s, but the service listens on %s", p, container, port)
				}
			}
			if len(svc.Healthcheck.Test) == 0 {
				t.Errorf("no health check")
			} else {
				test := svc.Healthcheck.Test
				if test[0] != "CMD" {
					t.Fatalf("health check %q: want the exec form [\"CMD\", ...]: the image has no shell", test)
				}
				checkProbe(t, test[1:], d.entrypoint, port)
			}
			// Every server a URL names is a service that must be healthy
			// first.
			deps := map[string]string{}
			if cfg.Store != infra.StorePostgres {
				t.Errorf("store %q: want CQRSKIT_STORE=postgres, so that a missing PostgreSQL URL stops the container", cfg.Store)
			}
			if cfg.PostgresURL != "" {
				u, _ := url.Parse(cfg.PostgresURL)
				deps[u.Hostname()] = "--postgres-url"
			} else {
				t.Errorf("no PostgreSQL URL: each container would have its own SQLite file")
			}
			if cfg.NATSURL != "" {
				u, _ := url.Parse(cfg.NATSURL)
				deps[u.Hostname()] = "--nats-url"
			}
			for host, flag := range deps {
				if _, ok := c.Services[host]; !ok {
					t.Errorf("%s names host %q, which is no service", flag, host)
				}
				if svc.DependsOn[host].Condition != "service_healthy" {
					t.Errorf("%s names %q, but the service does not depend on it being healthy", flag, host)
				}
			}
		})
	}
	for _, r := range []infra.Role{infra.RoleAPI, infra.RoleRelay, infra.RoleWorker} {
		if !roles[r] {
			t.Errorf("no service runs role %s", r)
		}
	}
	api := c.Services["api"]
	if len(api.Ports) == 0 {
		t.Errorf("the api service publishes no port")
	}

	nats := c.Services["nats"]
	if !slices.Contains(nats.Command, "-js") && !slices.Contains(nats.Command, "--jetstream") {
		t.Errorf("nats runs without JetStream: %q", nats.Command)
	}
	for _, name := range []string{"postgres", "nats"} {
		if len(c.Services[name].Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	if len(d.stages) < 2 || !strings.Contains(strings.ToUpper(d.stages[0]), " AS ") {
		t.Errorf("want a multi-stage build, got FROM %q", d.stages)
	}
	// The build stage's Go is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(gomod)
	if m == nil || !strings.HasPrefix(d.stages[0], "golang:"+string(m[1])) {
		t.Errorf("build stage %q: want golang:%s", d.stages[0], m[1])
	}
	if !strings.Contains(d.text, "CGO_ENABLED=0") || !strings.Contains(d.text, "./sample") {
		t.Errorf("the binary is not built static from ./sample (CGO_ENABLED=0)")
	}
	if u := strings.Split(d.user, ":")[0]; u == "" || u == "root" || u == "0" {
		t.Errorf("the final stage runs as %q; want a non-root user", d.user)
	}
	if d.entrypoint == "" {
		t.Fatal("no ENTRYPOINT")
	}
	cfg, _ := parse(t, nil, d.env)
	port := portOf(t, cfg.Addr)
	if !slices.Contains(d.expose, port) {
		t.Errorf("EXPOSE %v, but the binary listens on %s by default", d.expose, port)
	}
	checkProbe(t, d.healthcheck, d.entrypoint, port)
	for k := range d.env {
		if !slices.Contains(slices.Collect(mapValues(infra.Env)), k) {
			t.Errorf("ENV %s is not one the binary reads", k)
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}
