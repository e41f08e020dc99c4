package faultmodel_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/internal/faultmodel"
	"github.com/cqrskit/cqrskit/messagebus"
	busmem "github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/sqlite"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// Environment variables of the fault-model test.
const (
	// envSeed replays one seed: CQRSKIT_FAULT_SEED=N go test -run TestFaultModel.
	envSeed = "CQRSKIT_FAULT_SEED"
	// envLong=1 runs seeds for envDuration (default 5m) per test instead
	// of the short CI set.
	envLong     = "CQRSKIT_FAULT_LONG"
	envDuration = "CQRSKIT_FAULT_DURATION"
	// envVerbose=1 sends the relay's and handler's logs to stderr.
	envVerbose = "CQRSKIT_FAULT_VERBOSE"
)

// settleBound is how long any stream may wait once its faults ended: after
// the faults stop, everything must arrive within it (and again after the
// parked rows are retried).
const settleBound = 10 * time.Second

// plan is one run, derived from its seed.
type plan struct {
	seed      uint64
	nats      bool
	streams   int
	commands  int
	batch     int
	relays    int
	ttl       time.Duration // of the SQLite lease
	maxPauses int
	pub       faultmodel.PublisherFaults
	proxy     faultmodel.ProxyFaults
	reject    float64 // an event is rejected for good
	twoAgg    float64 // a command touches two aggregates with one derived event ID
	retry     float64 // a command is retried with its event IDs
	dup, late float64
	funcErr   float64 // the handler's Func (or its tx) fails
}

func newPlan(seed uint64, nats bool) plan {
	r := rand.New(rand.NewPCG(seed, 0))
	pick := func(p float64, v float64) float64 {
		if r.Float64() < p {
			return v * r.Float64()
		}
		return 0
	}
	p := plan{
		seed:     seed,
		nats:     nats,
		streams:  2 + r.IntN(5),
		commands: 20 + r.IntN(60),
		batch:    2 + r.IntN(15),
		relays:   1 + r.IntN(2),
		ttl:      2 * time.Second,
		reject:   pick(0.5, 0.06),
		twoAgg:   pick(0.5, 0.15),
		retry:    pick(0.5, 0.15),
		dup:      pick(0.5, 0.2),
		late:     pick(0.5, 0.1),
		funcErr:  pick(0.5, 0.2),
	}
	if nats {
		p.proxy = faultmodel.ProxyFaults{DropPub: pick(0.8, 0.05), DropAck: pick(0.8, 0.05), Delay: pick(0.5, 0.1), MaxDelay: 5 * time.Millisecond}
		if p.proxy.DropPub == 0 && p.proxy.DropAck == 0 {
			p.proxy.DropPub = 0.03
		}
		p.batch = 8 + r.IntN(40)
	} else {
		p.pub = faultmodel.PublisherFaults{Before: pick(0.5, 0.1), LostAck: pick(0.5, 0.1), Timeout: pick(0.3, 0.05)}
	}
	if r.IntN(10) == 0 { // leadership lost in the middle of a batch
		p.relays = 2
		p.ttl = 500 * time.Millisecond
		p.maxPauses = 2
		p.pub.Pause = 0.05
		p.pub.PauseFor = 1200 * time.Millisecond
	}
	return p
}

func (p plan) String() string {
	broker := "memory"
	if p.nats {
		broker = fmt.Sprintf("nats via proxy %+v", p.proxy)
	}
	return fmt.Sprintf("seed %d: %s broker, %d streams, %d commands, batch %d, %d relays (lease %s, %d pauses), publisher %+v, "+
		"reject %.3f, two-aggregate %.3f, retry %.3f, dup %.3f, late %.3f, func errors %.3f",
		p.seed, broker, p.streams, p.commands, p.batch, p.relays, p.ttl, p.maxPauses, p.pub,
		p.reject, p.twoAgg, p.retry, p.dup, p.late, p.funcErr)
}

// model is what the writer believes committed: an append that returned
// no error stored its events.
type model struct {
	mu       sync.Mutex
	streams  map[string][]uuid.UUID // event IDs in version order
	rejected map[uuid.UUID]bool     // rejected by the broker until lifted
	cmds     []committed
}

type committed struct {
	stream string
	events []event.Event
}

func (m *model) isRejected(msg messagebus.Message) bool {
	id, err := uuid.Parse(msg.ID)
	if err != nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rejected[id]
}

// arrivable is, per stream, how many events must arrive while rejections
// hold: those before the stream's first rejected event.
func (m *model) arrivable() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for s, ids := range m.streams {
		n := len(ids)
		for i, id := range ids {
			if m.rejected[id] {
				n = i
				break
			}
		}
		out[s] = n
	}
	return out
}

func (m *model) all() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for s, ids := range m.streams {
		out[s] = len(ids)
	}
	return out
}

type applied struct {
	stream  string
	version int64
	id      string
}

// check compares the read model's apply sequence with the model. Problems
// are for good (an event applied twice, out of order, or unknown); done
// reports that each stream has applied at least want[stream] events.
func (m *model) check(rows []applied, want map[string]int) (done bool, problems []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string][]int64{}
	bad := map[string]bool{}
	for _, r := range rows {
		k := len(seen[r.stream])
		seen[r.stream] = append(seen[r.stream], r.version)
		ids, known := m.streams[r.stream]
		switch {
		case !known:
			bad[r.stream] = true
		case r.version != int64(k+1):
			bad[r.stream] = true
		case k >= len(ids) || ids[k].String() != r.id:
			bad[r.stream] = true
		}
	}
	for s := range bad {
		vs := seen[s]
		problems = append(problems, fmt.Sprintf("stream %s applied versions %v (want 1..%d, each once, in order, with the committed event IDs)",
			s, trim(vs), len(m.streams[s])))
	}
	slices.Sort(problems)
	done = true
	for s, n := range want {
		if len(seen[s]) < n {
			done = false
		}
	}
	return done, problems
}

func trim(vs []int64) string {
	if len(vs) <= 40 {
		return fmt.Sprint(vs)
	}
	return fmt.Sprint(vs[:40]) + "..."
}

func lag(rows []applied, want map[string]int) string {
	got := map[string]int{}
	for _, r := range rows {
		got[r.stream]++
	}
	var out []string
	for s, n := range want {
		if got[s] < n {
			out = append(out, fmt.Sprintf("%s: %d of %d applied", s, got[s], n))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

func logger() *slog.Logger {
	if os.Getenv(envVerbose) == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// run executes one plan and returns what went wrong (nil for a clean run).
func run(t *testing.T, p plan) (err error) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := logger()
	var dices []*faultmodel.Dice
	dice := func() *faultmodel.Dice {
		d := faultmodel.NewDice(p.seed, uint64(len(dices)+1))
		dices = append(dices, d)
		return d
	}

	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fm.db"), sqlite.Config{Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if _, err := st.DB().ExecContext(ctx, `CREATE TABLE fm_applied (seq INTEGER PRIMARY KEY AUTOINCREMENT,
		stream TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT NOT NULL)`); err != nil {
		return err
	}

	// The brokers: one the relays publish to, one the consumer reads.
	var pubBroker outbox.Publisher
	var subBroker messagebus.Subscriber
	if p.nats {
		srv := natstest.URL(t)
		name := fmt.Sprintf("FM%d", p.seed)
		prefix := fmt.Sprintf("fm%d", p.seed)
		proxy, perr := faultmodel.StartProxy(srv, prefix+".", dice(), p.proxy)
		if perr != nil {
			return perr
		}
		defer proxy.Close()
		pb, perr := natsjs.New(ctx, natsjs.Config{URL: proxy.URL(), Stream: name, SubjectPrefix: prefix, PublishTimeout: 500 * time.Millisecond, Logger: log})
		if perr != nil {
			return perr
		}
		defer pb.Close()
		sb, perr := natsjs.New(ctx, natsjs.Config{URL: srv, Stream: name, SubjectPrefix: prefix, RetryDelay: 5 * time.Millisecond, Logger: log})
		if perr != nil {
			return perr
		}
		defer sb.Close()
		pubBroker, subBroker = pb, sb
		defer func() {
			if err != nil {
				err = fmt.Errorf("%w\nthe JetStream stream holds (stream: versions in storage order): %s\nthe proxy: %s",
					err, brokerOrder(srv, name), strings.Join(proxy.Log(), "; "))
			}
		}()
		defer func() {
			t.Logf("seed %d: proxy dropped %d publishes and %d acks, delayed %d frames", p.seed,
				proxy.DroppedPubs.Load(), proxy.DroppedAcks.Load(), proxy.Delayed.Load())
		}()
	} else {
		b, err := busmem.New(busmem.Config{RetryDelay: 2 * time.Millisecond, Logger: log})
		if err != nil {
			return err
		}
		defer b.Close()
		pubBroker, subBroker = b, b
	}

	m := &model{streams: map[string][]uuid.UUID{}, rejected: map[uuid.UUID]bool{}}

	// The consumer: an idempotent handler whose Func, or its transaction,
	// fails by seed, behind duplicate and late redelivery.
	fdice := dice()
	fn := func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		switch {
		case fdice.Roll(p.funcErr / 3):
			return fmt.Errorf("fault: read model connection: %w", driver.ErrBadConn)
		case fdice.Roll(p.funcErr / 3):
			_, err := tx.ExecContext(ctx, `SELECT * FROM fm_no_such_table`)
			return fmt.Errorf("fault: statement failed in the handler's transaction: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fm_applied (stream, version, event_id) VALUES (?, ?, ?)`,
			e.StreamID, e.Version, e.ID.String()); err != nil {
			return err
		}
		if fdice.Roll(p.funcErr / 3) {
			return errors.New("fault: the handler failed after its write (rolled back)")
		}
		return nil
	}
	h, err := handler.Idempotent(handler.Config{
		Name: "fm", Store: st, Logger: log, Func: fn,
		RetryPolicy: handler.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond,
			MaxAttempts: 1000, InProcess: 3},
	})
	if err != nil {
		return err
	}
	rd := &faultmodel.Redeliverer{Dice: dice(), Dup: p.dup, Late: p.late}
	sub, err := subBroker.Subscribe(ctx, "acct", "fm", rd.Wrap(h.Handle), messagebus.WithRetryDelay(2*time.Millisecond))
	if err != nil {
		return err
	}
	defer func() { _ = sub.Stop(context.WithoutCancel(ctx)) }()

	// The relays, each over its own faulty publisher, recorded against
	// its lease.
	leases := &faultmodel.LeaseLog{}
	defer func() {
		// Reported whatever else went wrong first.
		if v := leases.Violations(); len(v) > 0 {
			err = errors.Join(err, fmt.Errorf("lease rule broken %d times:\n  %s", len(v), strings.Join(v[:min(len(v), 5)], "\n  ")))
		}
	}()
	var relayWG sync.WaitGroup
	relayCtx, stopRelays := context.WithCancel(ctx)
	defer func() { stopRelays(); relayWG.Wait() }()
	for i := range p.relays {
		sl, err := st.Leader(sqlite.LeaderConfig{Name: "fm", TTL: p.ttl, Owner: "relay-" + strconv.Itoa(i)})
		if err != nil {
			return err
		}
		ld := &faultmodel.Leader{Inner: sl, Name: "relay-" + strconv.Itoa(i), Log: leases}
		pub := &faultmodel.Publisher{Inner: pubBroker, Dice: dice(), Faults: p.pub, Reject: m.isRejected,
			OnSend: ld.CheckSend(), MaxPauses: p.maxPauses}
		r, err := outbox.NewRelay(outbox.Config{
			Store: &faultmodel.Store{Store: st, Leader: ld}, Publisher: pub, Leader: ld, Notifier: st,
			BatchSize: p.batch, PollInterval: 20 * time.Millisecond, StandbyInterval: 40 * time.Millisecond,
			MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Logger: log.With("relay", i),
		})
		if err != nil {
			return err
		}
		relayWG.Go(func() { _ = r.Run(relayCtx) })
	}

	// The writer: commands against the model, while everything runs.
	if err := write(ctx, st, m, p); err != nil {
		return err
	}

	// The faults end. Everything not behind a rejected event must arrive
	// in time; then the parked rows are retried and the rest must arrive.
	for _, d := range dices {
		d.Stop()
	}
	if err := compareStore(ctx, st, m); err != nil {
		return err
	}
	if err := settle(ctx, st, m, m.arrivable, nil, "after the faults ended"); err != nil {
		return err
	}
	retry := func() error {
		parked, err := st.Parked(ctx, 0, 1000)
		if err != nil || len(parked) == 0 {
			return err
		}
		ids := make([]int64, len(parked))
		m.mu.Lock()
		for i, pr := range parked {
			ids[i] = pr.ID
			delete(m.rejected, pr.Event.ID)
		}
		m.mu.Unlock()
		_, err = st.RetryParked(ctx, ids)
		return err
	}
	if err := settle(ctx, st, m, m.all, retry, "after retrying the parked rows"); err != nil {
		return err
	}
	dls, err := st.ListDeadLetters(ctx, "", 0, 10)
	if err != nil {
		return err
	}
	if len(dls) > 0 {
		return fmt.Errorf("%d dead letters, first: %s", len(dls), dls[0].Error)
	}
	terms, actions := leases.Counts()
	t.Logf("%v: ok (%d lease terms, %d publishes and deletes checked)", p, terms, actions)
	return nil
}

// write runs the plan's commands. Appends that fail are not counted.
func write(ctx context.Context, st *sqlite.Store, m *model, p plan) error {
	r := rand.New(rand.NewPCG(p.seed, 1000))
	stream := func() string {
		if r.IntN(3) == 0 {
			return "acct-0" // a hot stream
		}
		return "acct-" + strconv.Itoa(r.IntN(p.streams))
	}
	newEvent := func(cmd, k int, id uuid.UUID) event.Event {
		return event.Event{ID: id, StreamType: "acct", Type: "acct.changed",
			Data: fmt.Appendf(nil, `{"cmd":%d,"k":%d}`, cmd, k)}
	}
	appendOne := func(s string, evs []event.Event, retried bool) error {
		rejected := make([]uuid.UUID, 0, len(evs))
		if !retried {
			for _, e := range evs {
				if r.Float64() < p.reject {
					rejected = append(rejected, e.ID)
				}
			}
		}
		m.mu.Lock()
		// Only the marks this append adds are undone if it fails: an ID
		// already marked belongs to an event stored before (a command
		// touching two aggregates reuses its event IDs).
		rejected = slices.DeleteFunc(rejected, func(id uuid.UUID) bool { return m.rejected[id] })
		for _, id := range rejected {
			m.rejected[id] = true
		}
		m.mu.Unlock()
		_, err := st.Append(ctx, s, event.Any, evs)
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			for _, id := range rejected {
				delete(m.rejected, id)
			}
			if errors.Is(err, event.ErrInvalidEvent) || ctx.Err() != nil {
				return err // the generator's mistake, or the end
			}
			return nil // refused (for example a duplicate event ID): not committed
		}
		if !retried {
			for _, e := range evs {
				m.streams[s] = append(m.streams[s], e.ID)
			}
			m.cmds = append(m.cmds, committed{s, evs})
		}
		return nil
	}
	for cmd := range p.commands {
		var err error
		switch x := r.Float64(); {
		case x < p.twoAgg:
			// One command, two aggregates, event IDs derived from the
			// command ID: the same ID in both streams.
			a, b := stream(), stream()
			if a == b {
				continue
			}
			id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "fm-%d-cmd-%d", p.seed, cmd))
			if err = appendOne(a, []event.Event{newEvent(cmd, 0, id)}, false); err == nil {
				err = appendOne(b, []event.Event{newEvent(cmd, 1, id)}, false)
			}
		case x < p.twoAgg+p.retry && len(m.cmds) > 0:
			c := m.cmds[r.IntN(len(m.cmds))]
			err = appendOne(c.stream, c.events, true)
		default:
			n := 1 + r.IntN(3)
			evs := make([]event.Event, n)
			for k := range evs {
				evs[k] = newEvent(cmd, k, uuid.Must(uuid.NewV7()))
			}
			err = appendOne(stream(), evs, false)
		}
		if err != nil {
			return fmt.Errorf("command %d: %w", cmd, err)
		}
		if r.IntN(3) == 0 {
			time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
		}
	}
	return nil
}

// compareStore checks that the store holds what the model committed.
func compareStore(ctx context.Context, st *sqlite.Store, m *model) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s, ids := range m.streams {
		var got []uuid.UUID
		for e, err := range st.Load(ctx, s, 1) {
			if err != nil {
				return fmt.Errorf("load %s: %w", s, err)
			}
			got = append(got, e.ID)
		}
		if !slices.Equal(got, ids) {
			missing := 0
			for _, id := range ids {
				if !slices.Contains(got, id) {
					missing++
				}
			}
			return fmt.Errorf("stream %s: %d committed events (appends that returned no error), %d stored, %d committed ones missing: an append reported success and stored nothing",
				s, len(ids), len(got), missing)
		}
	}
	return nil
}

// settle waits up to settleBound until the read model shows want(), each
// poll running between (if set) first; any apply out of order or twice
// fails at once.
func settle(ctx context.Context, st *sqlite.Store, m *model, want func() map[string]int, between func() error, when string) error {
	deadline := time.Now().Add(settleBound)
	for {
		if between != nil {
			if err := between(); err != nil {
				return err
			}
		}
		rows, err := readModel(ctx, st)
		if err != nil {
			return err
		}
		w := want()
		done, problems := m.check(rows, w)
		if len(problems) > 0 {
			return fmt.Errorf("read model %s: %s", when, strings.Join(problems, "; "))
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			stats, _ := st.Stats(ctx)
			return fmt.Errorf("streams still waiting %s %s %s (outbox: %d waiting, %d parked): %s",
				settleBound, when, "(bound)", stats.Backlog, stats.Parked, lag(rows, w))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readModel(ctx context.Context, st *sqlite.Store) ([]applied, error) {
	rows, err := st.DB().QueryContext(ctx, `SELECT stream, version, event_id FROM fm_applied ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []applied
	for rows.Next() {
		var a applied
		if err := rows.Scan(&a.stream, &a.version, &a.id); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// seeds runs fn for the seeds of this mode: the one in CQRSKIT_FAULT_SEED,
// the short CI set, or (CQRSKIT_FAULT_LONG=1) fresh seeds for a while.
func seeds(t *testing.T, test string, short int, fn func(t *testing.T, seed uint64)) {
	replay := func(seed uint64) string {
		return fmt.Sprintf("replay: %s=%d go test ./internal/faultmodel -run '^%s$' -v", envSeed, seed, test)
	}
	one := func(t *testing.T, seed uint64) {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Parallel()
			defer func() {
				if t.Failed() {
					t.Log(replay(seed))
				}
			}()
			fn(t, seed)
		})
	}
	if s := os.Getenv(envSeed); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer seed", envSeed, s)
		}
		one(t, seed)
		return
	}
	if os.Getenv(envLong) != "1" {
		if raceEnabled {
			short = max(1, short/2)
		}
		for seed := range uint64(short) {
			one(t, seed+1)
		}
		return
	}
	d := 5 * time.Minute
	if s := os.Getenv(envDuration); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("%s=%q: want a duration such as 10m", envDuration, s)
		}
	}
	start := rand.Uint64() >> 16
	t.Logf("long mode: seeds from %d for %s", start, d)
	end := time.Now().Add(d)
	for i := uint64(0); time.Now().Before(end); i++ {
		t.Run("group", func(t *testing.T) { // four parallel seeds at a time
			for k := range uint64(4) {
				one(t, start+4*i+k)
			}
		})
	}
}

// TestFaultModel runs the relay and an idempotent consumer over the memory
// broker behind Publisher-level faults (errors before sending, lost acks,
// timeouts, permanent rejections, pauses past the relay's lease), with
// duplicate and late redelivery and failing handler transactions, and
// checks every committed event took effect once, in stream order, within
// the bound once the faults ended.
func TestFaultModel(t *testing.T) {
	seeds(t, "TestFaultModel", 150, func(t *testing.T, seed uint64) {
		p := newPlan(seed, false)
		if err := run(t, p); err != nil {
			t.Errorf("%v\n%v", p, err)
		}
	})
}

// TestFaultModelNATS is TestFaultModel over an in-process NATS JetStream
// server behind a Proxy that drops publishes before storage and acks after
// it.
func TestFaultModelNATS(t *testing.T) {
	seeds(t, "TestFaultModelNATS", 4, func(t *testing.T, seed uint64) {
		p := newPlan(seed, true)
		if err := run(t, p); err != nil {
			t.Errorf("%v\n%v", p, err)
		}
	})
}

// brokerOrder reads a JetStream stream and lists each event stream's
// versions in storage order, for the failure report.
func brokerOrder(url, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := nats.Connect(url)
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err.Error()
	}
	str, err := js.Stream(ctx, name)
	if err != nil {
		return err.Error()
	}
	info, err := str.Info(ctx)
	if err != nil {
		return err.Error()
	}
	order := map[string][]string{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		msg, err := str.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		s := msg.Header.Get(envelope.HeaderStreamID)
		order[s] = append(order[s], msg.Header.Get(envelope.HeaderVersion))
	}
	var out []string
	for s, vs := range order {
		out = append(out, s+": "+strings.Join(vs, ","))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}
