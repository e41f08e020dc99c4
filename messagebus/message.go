package messagebus

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Message is what a Publisher sends: one event on its way to subscribers.
type Message struct {
	// ID identifies the message: the event ID. Brokers that de-duplicate
	// (NATS JetStream, memory) drop a message whose ID they stored within
	// their duplicate window, so republishing after a lost ack is safe.
	// Required.
	ID string
	// Topic names the channel the message is published to, for example
	// "product". See ValidateTopic for the allowed names.
	Topic string
	// Key orders messages: those with the same key reach a subscription in
	// publish order. The event's stream ID. May be empty (no order).
	Key string
	// Payload is the encoded event.
	Payload []byte
	// Headers travel with the message, for example event.Metadata.Headers().
	Headers map[string]string
}

// Delivery is a message handed to a Handler.
type Delivery struct {
	Message
	// Attempt counts deliveries of the message to its group, starting at
	// 1. Use it for backoff and give-up decisions; it is not an exact
	// count across restarts: memory continues it, NATS continues from the
	// server's delivery count (which includes deliveries the handler never
	// saw, such as messages fetched by a subscription that stopped, and
	// excludes in-place retries), Kafka starts again at 1.
	Attempt int
	// PublishedAt is when the broker stored the message; zero if unknown.
	PublishedAt time.Time
}

const (
	maxTopicLen  = 200
	maxGroupLen  = 128
	maxIDLen     = 256
	maxKeyLen    = 1024
	maxHeaderLen = 256
)

// ValidateTopic reports whether topic is a name every broker accepts:
// 1 to 200 characters, dot-separated words of ASCII letters, digits, '_'
// and '-' ("product", "billing.invoice-v2"). The error is a
// *ValidationError.
func ValidateTopic(topic string) error { return validateTopic("topic", topic) }

func validateTopic(field, topic string) error {
	bad := func(reason string) error {
		return &ValidationError{Field: field, Value: topic, Reason: reason}
	}
	if topic == "" {
		return bad("topic must not be empty")
	}
	if len(topic) > maxTopicLen {
		return bad("topic is longer than " + strconv.Itoa(maxTopicLen) + " bytes")
	}
	word := 0
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case c == '.':
			if word == 0 {
				return bad("topic has an empty word between dots (or starts or ends with a dot)")
			}
			word = 0
		case isWordChar(c):
			word++
		default:
			return bad("topic may contain only ASCII letters, digits, '_', '-' and '.' between words; found " + strconv.QuoteRune(rune(c)))
		}
	}
	if word == 0 {
		return bad("topic ends with a dot")
	}
	return nil
}

// ValidateGroup reports whether group is a consumer group name every broker
// accepts: 1 to 128 ASCII letters, digits, '_' and '-'. The error is a
// *ValidationError.
func ValidateGroup(group string) error {
	bad := func(reason string) error {
		return &ValidationError{Field: "group", Value: group, Reason: reason}
	}
	if group == "" {
		return bad("group must not be empty")
	}
	if len(group) > maxGroupLen {
		return bad("group is longer than " + strconv.Itoa(maxGroupLen) + " bytes")
	}
	for i := 0; i < len(group); i++ {
		if !isWordChar(group[i]) {
			return bad("group may contain only ASCII letters, digits, '_' and '-'; found " + strconv.QuoteRune(rune(group[i])))
		}
	}
	return nil
}

// Validate reports the first field of m that no broker would carry
// faithfully. The error is a *ValidationError naming the field and value.
func (m Message) Validate() error {
	switch {
	case m.ID == "":
		return &ValidationError{Field: "ID", Value: "", Reason: "message ID must not be empty: it is the broker's de-duplication key"}
	case len(m.ID) > maxIDLen:
		return &ValidationError{Field: "ID", Value: m.ID, Reason: "message ID is longer than " + strconv.Itoa(maxIDLen) + " bytes"}
	case !isToken(m.ID):
		return &ValidationError{Field: "ID", Value: m.ID, Reason: "message ID may contain only printable ASCII without spaces"}
	}
	if err := validateTopic("Topic", m.Topic); err != nil {
		return err
	}
	if len(m.Key) > maxKeyLen {
		return &ValidationError{Field: "Key", Value: m.Key, Reason: "key is longer than " + strconv.Itoa(maxKeyLen) + " bytes"}
	}
	if !utf8.ValidString(m.Key) || hasControl(m.Key) {
		return &ValidationError{Field: "Key", Value: m.Key, Reason: "key must be UTF-8 without control characters"}
	}
	for k, v := range m.Headers {
		// The field name is built only on failure: this loop runs for every
		// header of every published message.
		if k == "" || len(k) > maxHeaderLen || !isHeaderName(k) {
			return &ValidationError{Field: "Headers[" + strconv.Quote(k) + "]", Value: k,
				Reason: "header name must be 1 to " + strconv.Itoa(maxHeaderLen) + " printable ASCII characters without spaces or ':'"}
		}
		if hasControl(v) {
			return &ValidationError{Field: "Headers[" + strconv.Quote(k) + "]", Value: v, Reason: "header value must not contain control characters (CR, LF, ...)"}
		}
	}
	return nil
}

// Size is the number of bytes m occupies at a broker: payload, key, ID and
// headers. Brokers compare their own measure against their limit; this is
// a lower bound of all of them.
func (m Message) Size() int {
	n := len(m.Payload) + len(m.Key) + len(m.ID)
	for k, v := range m.Headers {
		n += len(k) + len(v)
	}
	return n
}

func isWordChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func isHeaderName(s string) bool { return isToken(s) && !containsByte(s, ':') }

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < ' ' && r != '\t' || r == 0x7f {
			return true
		}
	}
	return false
}
