// Package faultmodel holds seeded fault injectors and the fault-model test
// that runs the outbox relay and an idempotent consumer over them (issue
// 10, "A seeded fault-model test").
//
// Every injector draws from a Dice seeded from the run's seed, so a
// failing run prints the seed that replays it:
//
//	CQRSKIT_FAULT_SEED=N go test ./internal/faultmodel -run TestFaultModel
//
// The injectors:
//
//   - Proxy sits between a NATS client and server and drops, by seed, a
//     client's PUB/HPUB frame on the data subjects (the message is lost
//     before the server stores it) or the server's MSG/HMSG frame that
//     carries the JetStream publish ack (the message is stored, its ack
//     lost), or delays frames.
//   - Publisher wraps a messagebus.Publisher: errors before sending, lost
//     acks, timeouts, pauses (honouring ctx) and permanent rejections, and
//     keeps the Publisher contract: after a failure of key K, later
//     messages of K in the call are not sent (messagebus.ErrEarlierFailed).
//   - Redeliverer wraps a messagebus.Handler: a delivery handled twice, and
//     an old delivery handed over again later.
//   - Leader and Store wrap a relay's outbox.Leader and outbox.Store and
//     record, against the relay's lease, every publish and delete: one
//     that happens after the lease's ValidUntil is a violation.
//
// It is internal: the injectors exist for this package's test and are not
// an API.
package faultmodel
