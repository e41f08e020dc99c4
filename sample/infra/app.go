package infra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/projection"
	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
)

// Consumer groups and handler names. They identify the consumers' broker
// positions and processed marks: keep them stable.
const (
	ProductsGroup   = "products-read-model"
	AlertsGroup     = "low-stock-alerts"
	productsHandler = "sample.products"
	alertsHandler   = "sample.low-stock-alerts"
	// StatsProjection names the stats projection's checkpoint.
	StatsProjection = "sample.stats"
)

// App is the running service: its store, broker, relay, consumers and HTTP
// handler, as its role asks. Start it with Start and stop it with Close.
type App struct {
	cfg  Config
	log  *slog.Logger
	flog *slog.Logger // the framework components' logger

	tel     *telemetry
	storage *storage
	bus     *bus
	handler http.Handler

	bg     context.Context // background work; ends at Close
	stopBg context.CancelFunc
	wg     sync.WaitGroup

	relay     *outbox.Relay
	relayDone chan struct{}
	subs      []messagebus.Subscription
	workers   []func(context.Context) error // health checks of background work

	ready  atomic.Bool
	closed atomic.Bool
}

// Start opens and starts everything cfg's role needs and returns once the
// service can take requests. ctx bounds the start only; the service runs
// until Close.
func Start(ctx context.Context, cfg Config) (_ *App, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	a := &App{cfg: cfg, log: log, flog: frameworkLogger(log, cfg.LogLevel)}
	a.bg, a.stopBg = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			a.Close(context.WithoutCancel(ctx))
		}
	}()

	if a.tel, err = newTelemetry(ctx, cfg); err != nil {
		return nil, err
	}
	if a.storage, err = openStorage(ctx, cfg, a.flog); err != nil {
		return nil, err
	}
	svc, err := app.NewService(app.Config{Store: a.storage.store, Snapshots: a.storage.store, Logger: a.flog,
		TracerProvider: a.tel.tp, MeterProvider: a.tel.mp})
	if err != nil {
		return nil, err
	}
	db, reg := a.storage.store.DB(), svc.Registry()
	products := app.NewProducts(db, reg, a.storage.pipeline)
	alerts := app.NewAlerts(db, reg, cfg.LowStockThreshold)
	stats := app.NewStats(db, reg)

	if cfg.Role.runsRelay() || cfg.Role.runsWorker() {
		if a.bus, err = openBroker(ctx, cfg, a.flog); err != nil {
			return nil, err
		}
	}
	if cfg.Role.runsRelay() {
		if err := a.startRelay(); err != nil {
			return nil, err
		}
	}
	proj, err := a.statsProjection(stats)
	if err != nil {
		return nil, err
	}
	if cfg.Role.runsWorker() {
		if err := a.startConsumers(reg, products, alerts); err != nil {
			return nil, err
		}
		a.wg.Go(func() {
			if err := proj.Run(a.bg); err != nil {
				a.log.Error("stats projection stopped", "error", err)
			}
		})
	}
	hc := httpapi.HandlerConfig{Ready: a.readyCheck, Logger: log,
		MaxBodyBytes: cfg.MaxBodyBytes, ReadYourWritesTimeout: cfg.ReadYourWritesTimeout}
	if cfg.Role.runsAPI() {
		hc.Service, hc.Products, hc.Alerts, hc.Stats = svc, products, alerts, stats
		// A rebuild in this process shares the work with a projection
		// running in a worker process; neither applies an event twice.
		hc.RebuildStats = func(ctx context.Context) error { return proj.Rebuild(ctx, stats.Reset, nil) }
	}
	api, err := httpapi.NewHandler(hc)
	if err != nil {
		return nil, err
	}
	a.handler = a.tel.handler(api)
	a.ready.Store(true)
	return a, nil
}

// frameworkLogger is the logger of the framework's components: warnings and
// errors only, unless the service logs at debug level.
func frameworkLogger(log *slog.Logger, level slog.Level) *slog.Logger {
	if level <= slog.LevelDebug {
		return log
	}
	return slog.New(minLevel{log.Handler(), max(level, slog.LevelWarn)})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}
func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }

// startRelay runs the outbox relay in the background. With PostgreSQL an
// advisory lock elects one active relay among all processes; the others
// wait as hot standbys.
func (a *App) startRelay() error {
	rc := outbox.Config{Store: a.storage.pipeline, Publisher: a.bus, Notifier: a.storage.notifier,
		Leader: a.storage.leader, Logger: a.flog, TracerProvider: a.tel.tp, MeterProvider: a.tel.mp}
	relay, err := outbox.NewRelay(rc)
	if err != nil {
		return err
	}
	a.relay, a.relayDone = relay, make(chan struct{})
	a.wg.Go(func() {
		defer close(a.relayDone)
		if err := relay.Run(a.bg); err != nil {
			a.log.Error("outbox relay stopped", "error", err)
		}
	})
	a.workers = append(a.workers, func(context.Context) error {
		select {
		case <-a.relayDone:
			return &app.NotReadyError{Reason: "the outbox relay has stopped"}
		default:
			return nil
		}
	})
	return nil
}

// retryPolicy of the consumers: an event that arrives before its
// predecessor (several workers share a group) waits for it with short,
// growing delays; one that keeps failing ends in the dead letters.
var retryPolicy = handler.RetryPolicy{InitialDelay: 20 * time.Millisecond, MaxDelay: 5 * time.Second, MaxAttempts: 30, InProcess: 5}

// startConsumers subscribes the two consumers of the product events:
// the products read model and the low-stock alerter, each in its own
// group, each through an idempotent handler. Each subscription hands
// ConsumerConcurrency deliveries at once to a batcher, one lane per
// product, so the deliveries in hand at one moment commit in one
// transaction instead of one each. (Both read models also accept a
// product's events out of order, which several worker processes sharing
// a group can hand over: see app.Products.Apply and app.Alerts.)
func (a *App) startConsumers(reg *event.Registry, products *app.Products, alerts *app.Alerts) error {
	hs := a.storage.pipeline
	var apply handler.Func = products.Apply
	if a.cfg.DecorateProducts != nil {
		apply = a.cfg.DecorateProducts(apply)
	}
	cfg := func(name string, fn handler.Func) handler.Config {
		return handler.Config{Name: name, Store: hs, Func: fn, RetryPolicy: retryPolicy, Logger: a.flog,
			TracerProvider: a.tel.tp, MeterProvider: a.tel.mp}
	}
	ph, err := handler.Idempotent(cfg(productsHandler, apply))
	if err != nil {
		return err
	}
	onStock, err := handler.For(reg, alerts.StockAdjusted)
	if err != nil {
		return err
	}
	ah, err := handler.Idempotent(cfg(alertsHandler, onStock))
	if err != nil {
		return err
	}
	pb, err := handler.NewBatcher(ph, handler.BatcherConfig{MaxBatch: consumerBatch})
	if err != nil {
		return err
	}
	ab, err := handler.NewBatcher(ah, handler.BatcherConfig{MaxBatch: consumerBatch})
	if err != nil {
		return err
	}
	// Readers waiting for their own writes (?min_version) wake as soon as
	// the products read model commits.
	productsFn := func(ctx context.Context, d messagebus.Delivery) error {
		err := pb.Handle(ctx, d)
		if err == nil {
			if e, derr := envelope.Event(d.Message); derr == nil {
				products.NotifyApplied(e)
			} else {
				products.Notify()
			}
		}
		return err
	}
	for _, c := range []struct {
		group string
		fn    messagebus.Handler
		h     *handler.Handler
	}{{ProductsGroup, productsFn, ph}, {AlertsGroup, ab.Handle, ah}} {
		if err := a.subscribe(c.group, c.fn, c.h); err != nil {
			return err
		}
	}
	return nil
}

// consumerBatch is the most deliveries a consumer commits in one
// transaction.
const consumerBatch = 100

// subscribe adds a member to group and a health check for it.
func (a *App) subscribe(group string, fn messagebus.Handler, h *handler.Handler) error {
	sub, err := a.bus.Subscribe(a.bg, domain.StreamType, group, fn, messagebus.WithGiveUp(h.GiveUp),
		messagebus.WithConcurrency(a.cfg.ConsumerConcurrency))
	if err != nil {
		return fmt.Errorf("subscribe %s to %q: %w", group, domain.StreamType, err)
	}
	a.subs = append(a.subs, sub)
	a.workers = append(a.workers, func(context.Context) error {
		select {
		case <-sub.Done():
			return &app.NotReadyError{Reason: "consumer " + group + " has stopped", Err: sub.Err()}
		default:
			return nil
		}
	})
	return nil
}

// statsProjection returns the projection that feeds the stats read model
// from the event store's global log.
func (a *App) statsProjection(stats *app.Stats) (*projection.Projection, error) {
	pc := projection.Config{Name: StatsProjection, Events: a.storage.pipeline, Checkpoints: a.storage.pipeline,
		Apply: stats.Apply, Logger: a.flog, TracerProvider: a.tel.tp, MeterProvider: a.tel.mp}
	if a.storage.notifier != nil {
		pc.Notifier = a.storage.notifier
	} else {
		// Nothing in this process signals new events: poll briskly.
		pc.PollInterval = 100 * time.Millisecond
	}
	return projection.New(pc)
}

// readyCheck backs /readyz: not while stopping, and only with the database
// reachable and every background worker running.
func (a *App) readyCheck(ctx context.Context) error {
	if !a.ready.Load() {
		return &app.NotReadyError{Reason: "shutting down"}
	}
	if err := a.storage.store.DB().PingContext(ctx); err != nil {
		return &app.NotReadyError{Reason: "database unreachable", Err: err}
	}
	for _, check := range a.workers {
		if err := check(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Handler returns the HTTP handler: the API for roles all and api, the
// health endpoints for every role.
func (a *App) Handler() http.Handler { return a.handler }

// Describe says what the service runs and uses, for the startup line.
func (a *App) Describe() string {
	s := "role " + string(a.cfg.Role) + "; store: " + a.storage.describe
	if a.bus != nil {
		s += "; broker: " + a.bus.describe
	}
	return s + "; telemetry: " + a.tel.describe
}

// SetNotReady makes /readyz fail, so load balancers stop sending traffic
// before the server shuts down.
func (a *App) SetNotReady() { a.ready.Store(false) }

// Close stops the service gracefully: the consumers finish and acknowledge
// the message in hand, the relay stops between batches, then the broker and
// the database close. Events still in the outbox are published by the next
// relay to run; nothing is lost. ctx bounds the wait.
func (a *App) Close(ctx context.Context) error {
	if a.closed.Swap(true) {
		return nil
	}
	a.ready.Store(false)
	var errs []error
	for _, sub := range a.subs {
		if err := sub.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop consumer: %w", err))
		}
	}
	a.stopBg()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for the relay: %w", ctx.Err()))
	}
	if a.bus != nil {
		if err := a.bus.close(); err != nil && !errors.Is(err, messagebus.ErrClosed) {
			errs = append(errs, fmt.Errorf("close broker: %w", err))
		}
	}
	if a.storage != nil {
		if err := a.storage.close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if a.tel != nil { // last: flush what the others recorded while stopping
		// Telemetry lost to a collector that is away does not make the
		// service's stop a failure.
		if err := a.tel.shutdown(ctx); err != nil {
			a.log.Warn("telemetry not flushed", "error", err)
		}
	}
	return errors.Join(errs...)
}
