// Package envelope is the message format between the two sides of the
// pipeline: the outbox relay turns each stored event into a broker message
// with Message, and consumers (handler, eventtest, your own) turn a
// delivered message back into the event with Event. Both sides import this
// package, not each other.
//
// A message carries the event ID as its ID (the broker's de-duplication
// key), the stream ID as its key (per-stream order), the event's data as
// payload, and the rest of the event as headers: the Header constants plus
// the event's metadata (event.Metadata.Headers).
package envelope
