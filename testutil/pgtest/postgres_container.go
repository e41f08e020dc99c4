package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Environment variables read by the Testcontainers provider.
const (
	// EnvPostgresImage names the image the Testcontainers provider runs
	// instead of postgres:15-alpine, for example the local stand-in
	// scripts/images.sh builds where there is no registry. It must keep
	// the official image's contract (POSTGRES_HOST_AUTH_METHOD, the
	// readiness line logged twice on a first start).
	EnvPostgresImage = "CQRSKIT_TEST_POSTGRES_IMAGE"
	// EnvPostgresProvider=testcontainers makes Postgres use only the
	// Testcontainers provider (CQRSKIT_TEST_POSTGRES_URL still wins), so
	// that a machine with initdb still tests the container path.
	EnvPostgresProvider = "CQRSKIT_TEST_POSTGRES_PROVIDER"
)

// defaultPostgresImage is the server the Testcontainers provider runs.
const defaultPostgresImage = "postgres:15-alpine"

// containerLabel marks the provider's containers. With Testcontainers'
// reaper disabled (TESTCONTAINERS_RYUK_DISABLED=true, as with podman and
// no registry to pull the reaper from) they outlive the test process;
// remove them with: podman rm -f $(podman ps -aq --filter label=cqrskit.testutil=postgres)
const containerLabel = "cqrskit.testutil"

func postgresImage() string {
	if img := os.Getenv(EnvPostgresImage); img != "" {
		return img
	}
	return defaultPostgresImage
}

func init() {
	switch v := os.Getenv(EnvPostgresProvider); v {
	case "":
	case "testcontainers":
		defaultProviders = []provider{{"testcontainers", containerServer}}
	default:
		defaultProviders = []provider{{EnvPostgresProvider, func() (string, error) {
			return "", fmt.Errorf("%s=%q: want testcontainers, or unset for every provider", EnvPostgresProvider, v)
		}}}
	}
}

var container struct {
	once sync.Once
	url  string
	err  error
}

// containerServer returns the admin URL of this process's PostgreSQL
// container, starting it on first use. Testcontainers' reaper removes the
// container when the process exits.
func containerServer() (string, error) {
	container.once.Do(func() { container.url, container.err = startContainer() })
	return container.url, container.err
}

func startContainer() (string, error) {
	if err := dockerReachable(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The generic container, not Testcontainers' postgres module: that
	// module pulls in pgxpool, which this module does not otherwise need.
	image := postgresImage()
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithLabels(map[string]string{containerLabel: "postgres"}),
		testcontainers.WithEnv(map[string]string{"POSTGRES_HOST_AUTH_METHOD": "trust"}),
		testcontainers.WithExposedPorts("5432/tcp"),
		testcontainers.WithCmd("postgres", "-c", "fsync=off", "-c", "max_connections=300"),
		testcontainers.WithWaitStrategy(
			// The entrypoint restarts the server once after initdb.
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2),
			wait.ForListeningPort("5432/tcp"),
		),
	)
	if err != nil {
		return "", fmt.Errorf("start %s: %w", image, err)
	}
	hostPort, err := c.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		return "", fmt.Errorf("container address: %w", err)
	}
	u := "postgres://postgres@" + hostPort + "/postgres?sslmode=disable"
	return u, nil
}

// dockerReachable reports, without Testcontainers (which would try hard to
// find a daemon), whether a Docker daemon answers on DOCKER_HOST or a usual
// socket.
func dockerReachable() error {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if path, ok := strings.CutPrefix(h, "unix://"); ok {
			return dialUnix(path)
		}
		return nil // tcp:// or ssh://: let Testcontainers try
	}
	home, _ := os.UserHomeDir()
	candidates := []string{"/var/run/docker.sock"}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		candidates = append(candidates, filepath.Join(d, "docker.sock"))
	}
	if home != "" {
		candidates = append(candidates,
			filepath.Join(home, ".docker", "run", "docker.sock"),
			filepath.Join(home, ".docker", "desktop", "docker.sock"))
	}
	for _, p := range candidates {
		if dialUnix(p) == nil {
			return nil
		}
	}
	return errors.New("no Docker daemon: DOCKER_HOST is unset and no docker.sock answers")
}

func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return fmt.Errorf("no Docker daemon at %s (with podman: podman system service --time=0 unix://%s &): %w", path, path, err)
	}
	return c.Close()
}
