package infra_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/infra"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
	"github.com/cqrskit/cqrskit/testutil/natstest"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// service is the sample under test behind one httptest server that
// outlives restarts: while the service restarts, requests get 503.
type service struct {
	t   testing.TB
	cfg infra.Config
	srv *httptest.Server
	URL string

	mu       sync.RWMutex
	app      *infra.App
	inflight sync.WaitGroup
	starts   atomic.Int64
}

// start runs the sample with cfg until the test ends.
func start(t testing.TB, cfg infra.Config) *service {
	t.Helper()
	s := &service{t: t, cfg: cfg}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	s.up()
	t.Cleanup(func() {
		s.down()
		s.srv.Close()
	})
	return s
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	a := s.app
	if a != nil {
		s.inflight.Add(1)
	}
	s.mu.RUnlock()
	if a == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	defer s.inflight.Done()
	a.Handler().ServeHTTP(w, r)
}

func (s *service) up() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := infra.Start(ctx, s.cfg)
	if err != nil {
		s.t.Fatalf("start the sample (%s): %v", s.cfg.Role, err)
	}
	s.starts.Add(1)
	s.mu.Lock()
	s.app = a
	s.mu.Unlock()
}

// down stops the service gracefully, as Run does: no new requests, the
// ones in flight finish, then the app closes.
func (s *service) down() {
	s.t.Helper()
	s.mu.Lock()
	a := s.app
	s.app = nil
	s.mu.Unlock()
	if a == nil {
		return
	}
	a.SetNotReady()
	s.inflight.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		s.t.Errorf("close the sample (%s): %v", s.cfg.Role, err)
	}
}

// restart stops the service and starts it again on the same data.
func (s *service) restart() {
	s.t.Helper()
	s.down()
	s.up()
}

// crash stops the service abruptly, as close to a killed process as one
// process can get: requests in flight are not waited for, and consumers and
// relay are cancelled mid-work (their transactions roll back, their
// messages stay unacknowledged). Then it starts again on the same data.
func (s *service) crash() {
	s.t.Helper()
	s.mu.Lock()
	a := s.app
	s.app = nil
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = a.Close(ctx) // errors expected: nothing is waited for
	s.inflight.Wait()
	s.up()
}

// logger sends the service's logs to the test's output, warnings and up.
func logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// embedded is the default configuration: SQLite and an in-process NATS
// server, both in a temporary data directory.
func embedded(t testing.TB) infra.Config {
	return infra.Config{DataDir: t.TempDir(), Logger: logger(t)}
}

// postgresNATS is the production configuration: a fresh PostgreSQL
// database and the machine's NATS server, on a stream of the test's own,
// deleted at the end.
func postgresNATS(t testing.TB) infra.Config {
	pg := pgtest.New(t)
	url := natstest.Machine(t)
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	stream := "SAMPLE_TEST_" + suffix
	t.Cleanup(func() { deleteStream(t, url, stream) }) // after the service's own cleanup
	return infra.Config{PostgresURL: pg.URL, NATSURL: url, NATSStream: stream,
		NATSSubjectPrefix: "sample_test_" + suffix, DataDir: t.TempDir(), Logger: logger(t),
		PostgresMaxConns: 6} // tests of other packages share the server's max_connections
}

func deleteStream(t testing.TB, url, stream string) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Logf("delete stream %s: %v", stream, err)
	}
}

// response is an HTTP response with its body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request. body is sent as is when it is a string or an
// io.Reader, and as JSON otherwise; hdr are name, value pairs, applied after
// the default Content-Type: application/json (an empty value removes it).
func (s *service) do(t testing.TB, method, path string, body any, hdr ...string) response {
	t.Helper()
	r, err := s.try(method, path, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (s *service) try(method, path string, body any, hdr ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(js)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}, err
}

// want fails the test unless r has status.
func (r response) want(t testing.TB, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// decode decodes the JSON body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// create creates a product and returns its ID.
func (s *service) create(t testing.TB, name string, price, stock int64) string {
	t.Helper()
	var res httpapi.CommandResult
	s.do(t, "POST", "/products", map[string]any{"name": name, "sku": newSKU(), "price_cents": price, "stock": stock}).
		want(t, http.StatusCreated).decode(t, &res)
	return res.ID
}

// command posts body to /products/{id}/{cmd} and returns the new version.
func (s *service) command(t testing.TB, id, cmd string, body any, hdr ...string) int64 {
	t.Helper()
	var res httpapi.CommandResult
	s.do(t, "POST", "/products/"+id+"/"+cmd, body, hdr...).want(t, http.StatusOK).decode(t, &res)
	return res.Version
}

// product reads id from the read model once it has reached version minVersion.
func (s *service) product(t testing.TB, id string, minVersion int64) app.ProductView {
	t.Helper()
	var v app.ProductView
	s.do(t, "GET", fmt.Sprintf("/products/%s?min_version=%d", id, minVersion), nil).want(t, http.StatusOK).decode(t, &v)
	if v.Version < minVersion {
		t.Fatalf("GET ?min_version=%d returned version %d", minVersion, v.Version)
	}
	return v
}

var skuSeq atomic.Int64

func newSKU() string { return fmt.Sprintf("SKU-%d-%s", skuSeq.Add(1), uuid.NewString()[:8]) }

// eventually polls cond until it returns "" or timeout passes, then fails
// with cond's last complaint.
func eventually(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
