//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// kind is a command of the sample's API.
type kind int

const (
	kindCreate kind = iota
	kindStock
	kindPrice
	kindRename
	kindDiscontinue
)

func (k kind) String() string {
	return [...]string{"create", "adjust stock", "change price", "rename", "discontinue"}[k]
}

// ack is a command the API acknowledged: what the store must hold at
// product's stream, version.
type ack struct {
	corr    string
	kind    kind
	product string
	version int64
	name    string // create, rename
	sku     string // create
	price   int64  // create, change price
	stock   int64  // create: initial stock
	delta   int64  // adjust stock
}

// ledger is the clients' record of what they sent and heard back.
type ledger struct {
	mu        sync.Mutex
	acks      []ack
	ambiguous map[string]kind // correlation ID -> command whose answer was lost

	sent     atomic.Int64 // requests that reached a server
	unsent   atomic.Int64 // connection refused: the API was down
	rejected atomic.Int64 // definite refusals (4xx)
	statuses sync.Map     // status code -> *atomic.Int64
}

func newLedger() *ledger { return &ledger{ambiguous: map[string]kind{}} }

func (l *ledger) countStatus(code int) {
	v, _ := l.statuses.LoadOrStore(code, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// pool is the set of products the clients work on: created and
// acknowledged, not known to be discontinued.
type pool struct {
	mu  sync.Mutex
	ids []string
}

func (p *pool) add(id string) {
	p.mu.Lock()
	p.ids = append(p.ids, id)
	p.mu.Unlock()
}

func (p *pool) remove(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.ids {
		if x == id {
			p.ids[i] = p.ids[len(p.ids)-1]
			p.ids = p.ids[:len(p.ids)-1]
			return
		}
	}
}

func (p *pool) pick(r *rand.Rand) (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) == 0 {
		return "", 0
	}
	return p.ids[r.IntN(len(p.ids))], len(p.ids)
}

// loader drives commands at the API processes.
type loader struct {
	apis     []string // base URLs
	client   *http.Client
	ledger   *ledger
	pool     pool
	products int
	runID    string
	seq      atomic.Int64
	seed     uint64
	poison   string // the poison product's name; never added to the pool
}

func newLoader(apis []string, products int, runID, poison string, seed uint64) *loader {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}
	return &loader{apis: apis, client: &http.Client{Transport: tr, Timeout: 20 * time.Second},
		ledger: newLedger(), products: products, runID: runID, poison: poison, seed: seed}
}

// run runs clients until ctx ends, together at most rate commands a
// second. Commands in flight when ctx ends are finished.
func (l *loader) run(ctx context.Context, clients, rate int) {
	tokens := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				close(tokens)
				return
			case <-t.C:
				select {
				case tokens <- struct{}{}:
				default: // every client is busy: skip the tick
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(l.seed, uint64(i)+1))
			for range tokens {
				if !l.one(r) {
					// The API is down: do not spin on a refused connection.
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

// one sends one command; false means it could not connect.
func (l *loader) one(r *rand.Rand) bool {
	id, n := l.pool.pick(r)
	x := r.Float64()
	switch {
	case id == "" || (n < l.products && x < 0.5) || x < 0.03:
		return l.create(r, "")
	case x < 0.12:
		p := 100 + r.Int64N(9900)
		return l.command(r, ack{kind: kindPrice, product: id, price: p}, "/price", map[string]any{"price_cents": p})
	case x < 0.20:
		name := fmt.Sprintf("chaos %s %d", l.runID, l.seq.Add(1))
		return l.command(r, ack{kind: kindRename, product: id, name: name}, "/rename", map[string]any{"name": name})
	case x < 0.205:
		return l.command(r, ack{kind: kindDiscontinue, product: id}, "", nil)
	default:
		d := r.Int64N(9) - 4 // -4 .. 4, without 0
		if d >= 0 {
			d++
		}
		return l.command(r, ack{kind: kindStock, product: id, delta: d}, "/stock", map[string]any{"delta": d})
	}
}

// create creates a product, named name unless that is empty.
func (l *loader) create(r *rand.Rand, name string) bool {
	_, ok := l.createNamed(r, name)
	return ok
}

// createNamed creates a product and reports its outcome.
func (l *loader) createNamed(r *rand.Rand, name string) (outcome, bool) {
	n := l.seq.Add(1)
	if name == "" {
		name = fmt.Sprintf("chaos %s %d", l.runID, n)
	}
	a := ack{kind: kindCreate, name: name, sku: fmt.Sprintf("CHAOS-%s-%d", l.runID, n),
		price: 100 + r.Int64N(9900), stock: 5 + r.Int64N(20)}
	body := map[string]any{"name": a.name, "sku": a.sku, "price_cents": a.price, "stock": a.stock}
	out := l.send(r, a, http.MethodPost, "/products", body)
	return out, out != unsent
}

func (l *loader) command(r *rand.Rand, a ack, path string, body map[string]any) bool {
	method := http.MethodPost
	if a.kind == kindDiscontinue {
		method = http.MethodDelete
	}
	return l.send(r, a, method, "/products/"+a.product+path, body) != unsent
}

// outcome of one command.
type outcome int

const (
	acked outcome = iota
	refused
	unsent
	ambiguous
)

// send sends a command and records its outcome.
func (l *loader) send(r *rand.Rand, a ack, method, path string, body map[string]any) outcome {
	a.corr = l.runID + "-" + strconv.FormatInt(l.seq.Add(1), 10)
	out, res := l.do(r, a.corr, method, path, body)
	lg := l.ledger
	switch out {
	case unsent:
		lg.unsent.Add(1)
	case acked:
		if a.kind == kindCreate {
			a.product = res.ID
		}
		a.version = res.Version
		lg.mu.Lock()
		lg.acks = append(lg.acks, a)
		lg.mu.Unlock()
		switch a.kind {
		case kindCreate:
			if a.name != l.poison {
				l.pool.add(a.product)
			}
		case kindDiscontinue:
			l.pool.remove(a.product)
		}
	case refused:
		lg.rejected.Add(1)
	case ambiguous:
		lg.mu.Lock()
		lg.ambiguous[a.corr] = a.kind
		lg.mu.Unlock()
	}
	return out
}

type commandResult struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// do sends one request to a random API process.
func (l *loader) do(r *rand.Rand, corr, method, path string, body map[string]any) (outcome, commandResult) {
	var res commandResult
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	base := l.apis[r.IntN(len(l.apis))]
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		panic(err) // the suite built a bad request
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Correlation-Id", corr)
	resp, err := l.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return unsent, res
		}
		l.ledger.sent.Add(1)
		return ambiguous, res
	}
	defer resp.Body.Close()
	l.ledger.sent.Add(1)
	l.ledger.countStatus(resp.StatusCode)
	data, err := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		if err != nil || json.Unmarshal(data, &res) != nil || res.ID == "" || res.Version < 1 {
			return ambiguous, res // acknowledged, but we could not read the answer
		}
		return acked, res
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		// 409: the product's state refused (stock below zero, discontinued,
		// too many conflicts): nothing was stored. A product that refuses
		// for another reason than stock is likely discontinued: drop it.
		var eb errorBody
		_ = json.Unmarshal(data, &eb)
		if resp.StatusCode == http.StatusConflict && eb.Field != "delta" {
			if id := productOf(path); id != "" {
				l.pool.remove(id)
			}
		}
		return refused, res
	default: // 5xx: the command may or may not have been stored
		return ambiguous, res
	}
}

// productOf returns the product ID in a command's path.
func productOf(path string) string {
	const prefix = "/products/"
	if len(path) < len(prefix)+36 || path[:len(prefix)] != prefix {
		return ""
	}
	return path[len(prefix) : len(prefix)+36]
}
