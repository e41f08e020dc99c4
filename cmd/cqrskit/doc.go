// Command cqrskit inspects and operates a cqrskit event store in PostgreSQL
// or SQLite: its schema, streams, the global log, the outbox, dead letters
// and projections.
//
//	go install github.com/cqrskit/cqrskit/cmd/cqrskit@latest
//	cqrskit --db sqlite://data/events.db migrate up
//	export CQRSKIT_DB='postgres://app@db:5432/app?sslmode=disable'
//	cqrskit outbox status
//
// # Global flags
//
//	--db URL             postgres://USER:PASSWORD@HOST:PORT/DBNAME?... or
//	                     sqlite://PATH (sqlite:///abs/path.db); default $CQRSKIT_DB
//	--schema NAME        PostgreSQL schema of the tables (postgres.Config.Schema);
//	                     default $CQRSKIT_SCHEMA, else the search_path
//	--table-prefix P     table prefix (Config.TablePrefix); default
//	                     $CQRSKIT_TABLE_PREFIX, else "cqrs_"
//	-o, --output FORMAT  text (default) or json
//	-v, --verbose        log the stores' diagnostics to stderr
//
// Results go to stdout, errors, hints and progress to stderr. With
// --output json every listing prints one JSON document (events tail prints
// one JSON object per line). Exit codes: 0 success, 1 the command failed
// (one "cqrskit: ..." line on stderr: a bad URL, an unreachable server,
// missing tables with "run `cqrskit migrate up`"), 2 the command line is
// wrong (an error line and a pointer to --help).
//
// # Commands
//
//	migrate up                 apply the migrations the database lacks; creates
//	                           a SQLite file, and a --schema, if missing
//	migrate status             list migrations, applied or pending (read only)
//	migrate sql [--dialect D]  print the schema as SQL; no connection is made
//	migrate rebase-txids [--advance]
//	                           renumber stored transaction ids after a restore
//	                           into another PostgreSQL cluster (Migrate refuses
//	                           to start until then)
//
//	streams list [--after ID] [--limit N | --all]
//	                           streams by ID with type, version, last write
//	streams show ID [--from VERSION]
//	                           a stream's events: versions, metadata, payloads
//
//	events tail [--from start|end|CURSOR] [-f] [--poll D] [-n N]
//	                           the global log in reader order, gap-safe;
//	                           -f follows it until Ctrl-C (exit 0)
//
//	outbox status              unpublished backlog, oldest age, and the relay
//	                           holding leadership: the session holding the
//	                           advisory lock (PostgreSQL, from pg_locks) or the
//	                           lease rows (SQLite)
//
//	deadletters list [--handler H] [--after ID] [--limit N]
//	deadletters show ID
//	deadletters replay ID... (--nats-url URL | --kafka-brokers B) [--wait D]
//	deadletters discard ID...
//
//	projections status         checkpoints and their lag behind the log
//	projections rebuild NAME (--reset-sql SQL | --no-reset) [--no-wait] [--timeout D]
//
//	doctor [--max-horizon-age D]
//	                           check what stalls or misorders readers without an
//	                           error: a transaction holding the read horizon,
//	                           stored transaction ids ahead of the cluster's,
//	                           idle_in_transaction_session_timeout, stale
//	                           prepared transactions; OK/WARN/FAIL each, exit 1
//	                           on FAIL
//
// # What the CLI cannot do: run your code
//
// Replaying a dead letter and rebuilding a projection need the handler's
// and the projection's Go code, which only your service has. The CLI
// therefore asks the running service to do the work and watches the
// database for the outcome:
//
// deadletters replay republishes the dead letter's message, exactly as the
// handler received it, to its topic on the broker given by --nats-url
// (with --nats-stream and --nats-subject-prefix if the service changed
// them) or --kafka-brokers. The service's subscription delivers it to the
// handler again. For up to --wait the CLI watches the handler's processed
// mark: when it appears the dead letter is deleted; when the handler
// dead-letters the event again the command fails with the new error and
// the dead letter stays. Every consumer group of the topic receives the
// message again; idempotent handlers skip events they processed, unless
// their processed marks were pruned. JetStream drops a message whose ID it
// saw within the stream's duplicate window, so replay refuses a dead letter
// younger than that window. A service can replay through the handler
// itself with handler.DeadLetters.Replay.
//
// projections rebuild sets the checkpoint back to the start of the log in
// one transaction with --reset-sql (which empties the read model, as
// projection.Rebuild's ResetFunc does), after locking the checkpoint so a
// batch in flight commits first. The service running the projection starts
// over at its next batch; the CLI follows the checkpoint against the head
// the log had at the reset and shows a progress bar (done/total, rate, ETA)
// on a terminal, plain progress lines otherwise. Interrupting or
// --timeout stops the waiting, not the rebuild.
//
// The CLI never creates or changes broker streams or topics.
package main
