// Package pgtest gives each test a fresh, isolated PostgreSQL database,
// dropped at cleanup: New(t).
//
// # Providers
//
// The server comes from the first provider that works, in order: a server
// URL in CQRSKIT_TEST_POSTGRES_URL (a database is created and dropped per
// test), local initdb/pg_ctl binaries (an ephemeral server in a temporary
// directory on a free port), Testcontainers' Postgres module when a Docker
// daemon is reachable. CQRSKIT_TEST_POSTGRES_PROVIDER=testcontainers uses
// only the last (CQRSKIT_TEST_POSTGRES_URL still wins).
//
// # When there is none
//
// When no provider is available the test is skipped with one line saying
// how to point it at a server, unless CQRSKIT_REQUIRE_POSTGRES=1, which
// makes it a failure listing why each provider was unusable (CI sets it).
package pgtest
