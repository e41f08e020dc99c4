package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EnvRequireDocker=1 makes TestContainerServerRunsThePostgresImage fail,
// instead of skip, when no Docker API socket answers. .ci/containers sets it.
const EnvRequireDocker = "CQRSKIT_REQUIRE_DOCKER"

func TestDockerReachableNamesTheMissingSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "podman.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	err := dockerReachable()
	if err == nil {
		t.Fatal("dockerReachable: nil error for a socket that does not exist")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, sock) || !strings.Contains(msg, "podman system service") {
		t.Errorf("error %q: want one line naming %s and how to start a socket", msg, sock)
	}
}

func TestPostgresImageOverride(t *testing.T) {
	t.Setenv(EnvPostgresImage, "")
	if got := postgresImage(); got != defaultPostgresImage {
		t.Errorf("postgresImage() = %q with %s unset, want %q", got, EnvPostgresImage, defaultPostgresImage)
	}
	t.Setenv(EnvPostgresImage, "localhost/cqrskit/postgres:15")
	if got := postgresImage(); got != "localhost/cqrskit/postgres:15" {
		t.Errorf("postgresImage() = %q, want the %s value", got, EnvPostgresImage)
	}
}

// TestContainerServerRunsThePostgresImage starts the provider's container
// (the image of CQRSKIT_TEST_POSTGRES_IMAGE, or postgres:15-alpine) and
// uses the server: the Testcontainers path end to end.
func TestContainerServerRunsThePostgresImage(t *testing.T) {
	if err := dockerReachable(); err != nil {
		if os.Getenv(EnvRequireDocker) == "1" {
			t.Fatalf("Testcontainers: %v (%s=1)", err, EnvRequireDocker)
		}
		t.Skipf("Testcontainers: %v (set %s=1 to fail instead)", err, EnvRequireDocker)
	}
	u, err := containerServer()
	if err != nil {
		t.Fatalf("containerServer: %v", err)
	}
	pg := postgresOn(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var version string
	if err := pg.DB().QueryRowContext(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatalf("query the container's server: %v", err)
	}
	var fsync string
	if err := pg.DB().QueryRowContext(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Errorf("fsync = %q (%v): the provider's command line did not reach the server", fsync, err)
	}
	if _, err := pg.DB().ExecContext(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatalf("create a table: %v", err)
	}
	t.Logf("%s: PostgreSQL %s at %s", postgresImage(), version, redact(u))
}
