package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cqrskit/cqrskit/sample/infra"
)

// latencyScenario: commands sent to the sample's HTTP API at a fixed rate,
// open loop (each request leaves on schedule, whether or not earlier ones
// were answered), each followed by a read of the products read model until
// it shows the command's version: GET ?min_version=N (the API waits) or
// GET polled every 5ms. The latency is measured from the scheduled send,
// so a stalled server cannot hide its queue. The raw figure is the same
// requests' command acknowledgement (HTTP 200 after the commit): a read
// model cannot be visible before it.
type latencyScenario struct{}

func (latencyScenario) Name() string { return "latency" }

func (latencyScenario) Run(ctx context.Context, e *env) (_ []row, err error) {
	s, err := e.newScratch(ctx, "latency")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.drop()) }()
	// A live database, not a brand-new one (see env.steadyState): the
	// sample migrates the same schema again, a no-op.
	if e.cfg.store == "postgres" {
		b, err := e.openStore(ctx, s, 4)
		if err == nil {
			err = e.steadyState(ctx, b)
			err = errors.Join(err, b.close())
		}
		if err != nil {
			return nil, err
		}
	}
	cfg := infra.Config{Role: infra.RoleAll, Addr: "127.0.0.1:0", DataDir: s.dir, PostgresURL: s.url, Logger: e.log,
		ReadYourWritesTimeout: readTimeout}
	e.sampleBroker(&cfg, "latency")
	defer func() { err = errors.Join(err, e.deleteSampleStream(cfg)) }()
	app, err := infra.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start the sample: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, app.Close(ctx))
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	c := &client{base: "http://" + ln.Addr().String(), http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: time.Minute}}}
	defer c.http.CloseIdleConnections()
	rate := e.sizes.LatencyRate
	period := time.Second / time.Duration(rate)
	measured := max(1, int(e.sizes.LatencyDuration.Seconds()*float64(rate)))
	warm := min(rate, max(1, measured/4)) // up to a second of warm-up, not counted
	total := warm + measured
	// One product per command per second: commands on one product rarely
	// overlap (they would retry on a version conflict, which is the
	// sample's business, not the pipeline's).
	ids, err := c.createProducts(ctx, min(rate, total))
	if err != nil {
		return nil, err
	}
	if e.cfg.store == "postgres" { // plans of the read models' tables, now filled
		db, err := sql.Open("pgx", s.url)
		if err == nil {
			err = errors.Join(analyze(ctx, db), db.Close())
		}
		if err != nil {
			return nil, err
		}
	}

	results := make([]result, total)
	var wg sync.WaitGroup
	var firstSent, lastSent time.Time // of the measured commands
	start := time.Now().Add(20 * time.Millisecond)
	for i := range total {
		at := start.Add(time.Duration(i) * period)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		lastSent = time.Now()
		if i == warm {
			firstSent = lastSent
		}
		wg.Go(func() { results[i] = c.command(ctx, ids[i%len(ids)], i, at, e.cfg.latencyMode) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var ack, vis, lag []time.Duration
	failed, late := 0, 0
	var firstErr, firstLate error
	for _, r := range results[warm:] {
		if r.err != nil && r.ack == 0 {
			failed++
			firstErr = cmp.Or(firstErr, r.err)
			continue
		}
		if r.err != nil {
			// Acknowledged but never seen: counted at the time the read
			// gave up, a lower bound of its latency.
			late++
			firstLate = cmp.Or(firstLate, r.err)
		}
		ack, vis, lag = append(ack, r.ack), append(vis, r.visible), append(lag, r.visible-r.ack)
	}
	if failed*100 > measured { // more than 1 %: the latencies would mean little
		return nil, fmt.Errorf("%d of %d commands failed; first: %w", failed, measured, firstErr)
	}
	if late > 0 {
		fmt.Fprintf(e.stderr, "cqrsbench:   latency: %d of %d acknowledged commands not visible in the read model before the read gave up; first: %v\n",
			late, measured, firstLate)
	}
	ps := []float64{0.5, 0.99, 1}
	a, v, l := percentiles(ack, ps...), percentiles(vis, ps...), percentiles(lag, ps...)
	mode := "?min_version"
	if e.cfg.latencyMode == "poll" {
		mode = "polling"
	}
	r := newRow("latency", fmt.Sprintf("%d cmd/s open loop, %s, %s", rate, brokerName(e), mode), "ms", ms(v[1]), ms(a[1]),
		"the same commands' acknowledgement (HTTP 200 after commit)")
	r.LowerIsBetter, r.Ratio = true, ms(a[1])/ms(v[1])
	r = r.withTarget(atMost(25, "p99 <= 25 ms")).
		with("visible_p50_ms", ms(v[0])).with("visible_p99_ms", ms(v[1])).with("visible_max_ms", ms(v[2])).
		with("ack_p50_ms", ms(a[0])).with("ack_p99_ms", ms(a[1])).with("ack_max_ms", ms(a[2])).
		with("ack_to_visible_p50_ms", ms(l[0])).with("ack_to_visible_p99_ms", ms(l[1])).with("ack_to_visible_max_ms", ms(l[2])).
		with("commands", float64(measured)).with("failed", float64(failed)).with("not_visible", float64(late)).
		with("sent_per_s", float64(measured-1)/max(lastSent.Sub(firstSent).Seconds(), 1e-9))
	return []row{r}, nil
}

// readTimeout bounds the wait for the read model: the sample's
// ReadYourWritesTimeout with ?min_version, the polling loop's otherwise.
const readTimeout = 10 * time.Second

// pollEvery is the polling reader's pause between reads.
const pollEvery = 5 * time.Millisecond

// result is one command's outcome. err with a zero ack: the command
// failed; with an ack: it was never seen in the read model.
type result struct {
	ack, visible time.Duration
	err          error
}

// client speaks the sample's HTTP API.
type client struct {
	base string
	http *http.Client
}

// do sends a request and decodes a 2xx answer's JSON into out.
func (c *client) do(ctx context.Context, method, path, body string, out any) error {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

type commandResult struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// createProducts creates n products, 16 at a time, and waits until the
// read model has each.
func (c *client) createProducts(ctx context.Context, n int) ([]string, error) {
	ids := make([]string, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				var res commandResult
				body := fmt.Sprintf(`{"name":"Widget %d","sku":"W-%05d","price_cents":1999,"stock":1000000}`, i, i)
				err := c.do(ctx, http.MethodPost, "/products", body, &res)
				if err == nil {
					ids[i] = res.ID
					err = c.do(ctx, http.MethodGet, "/products/"+res.ID+"?min_version=1", "", nil)
				}
				if err != nil {
					cancel(fmt.Errorf("create product %d: %w", i, err))
				}
			}
		})
	}
	for i := range n {
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	return ids, ctx.Err()
}

// command changes product id's price, then reads the read model until it
// shows the new version. Both times are measured from at, the scheduled
// send.
func (c *client) command(ctx context.Context, id string, i int, at time.Time, mode string) result {
	var res commandResult
	if err := c.do(ctx, http.MethodPost, "/products/"+id+"/price", fmt.Sprintf(`{"price_cents":%d}`, 1000+i), &res); err != nil {
		return result{err: err}
	}
	ack := time.Since(at)
	if mode == "min_version" {
		err := c.do(ctx, http.MethodGet, "/products/"+id+"?min_version="+strconv.FormatInt(res.Version, 10), "", nil)
		return result{ack: ack, visible: time.Since(at), err: err}
	}
	for {
		var view struct {
			Version int64 `json:"version"`
		}
		err := c.do(ctx, http.MethodGet, "/products/"+id, "", &view)
		if err == nil && view.Version >= res.Version {
			return result{ack: ack, visible: time.Since(at)}
		}
		if err == nil && time.Since(at) > readTimeout {
			err = fmt.Errorf("product %s: version %d not visible after %s", id, res.Version, readTimeout)
		}
		if err != nil {
			return result{ack: ack, visible: time.Since(at), err: err}
		}
		time.Sleep(pollEvery)
	}
}
