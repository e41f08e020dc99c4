package event

import (
	"strconv"
	"unicode/utf8"
)

// Name limits. A stream type becomes a broker topic (outbox.DefaultTopic)
// and a stream ID becomes a message key, so the rules below are the ones
// every broker carries: NATS subject tokens, Kafka topic names (at most
// 249 characters of [a-zA-Z0-9._-], not "." or ".."), and
// messagebus.ValidateTopic, which checks the same rule.
const (
	// MaxStreamTypeLen is the longest stream type, in bytes.
	MaxStreamTypeLen = 200
	// MaxStreamIDLen is the longest stream ID, in bytes.
	MaxStreamIDLen = 1024
)

// ValidateStreamType reports whether name can be a stream type: 1 to 200
// bytes of dot-separated words, each word one or more ASCII letters,
// digits, '_' or '-' ("product", "billing.invoice-v2"). Every broker
// accepts such a name as a topic, so no event of the type is undeliverable.
// The error is a *ValidationError (errors.Is(err, ErrInvalidEvent)).
func ValidateStreamType(name string) error { return validateStreamType("StreamType", name) }

func validateStreamType(field, name string) error {
	bad := func(reason string) error {
		return &ValidationError{Field: field, Value: name, Reason: reason +
			"; a stream type is a broker topic: dot-separated words of ASCII letters, digits, '_' and '-', for example \"product\" or \"billing.invoice-v2\""}
	}
	if name == "" {
		return bad("must not be empty")
	}
	if len(name) > MaxStreamTypeLen {
		return bad("longer than " + strconv.Itoa(MaxStreamTypeLen) + " bytes")
	}
	word := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.':
			if word == 0 {
				return bad("has an empty word between dots, or starts with a dot")
			}
			word = 0
		case isWordChar(c):
			word++
		default:
			return bad("contains " + strconv.QuoteRune(rune(c)))
		}
	}
	if word == 0 {
		return bad("ends with a dot")
	}
	return nil
}

// ValidateStreamID reports whether id can be a stream ID: 1 to 1024 bytes
// of UTF-8 without control characters. The stream ID is the broker's
// message key, which orders a stream's messages. The error is a
// *ValidationError (errors.Is(err, ErrInvalidEvent)).
func ValidateStreamID(id string) error { return validateStreamID("stream", id) }

func validateStreamID(field, id string) error {
	bad := func(reason string) error {
		return &ValidationError{Field: field, Value: id, Reason: reason}
	}
	switch {
	case id == "":
		return bad("stream ID must not be empty")
	case len(id) > MaxStreamIDLen:
		return bad("stream ID is longer than " + strconv.Itoa(MaxStreamIDLen) + " bytes (it is the broker's message key)")
	case !utf8.ValidString(id):
		return bad("stream ID must be valid UTF-8 (it is the broker's message key)")
	}
	for _, r := range id {
		if r < ' ' || r == 0x7f {
			return bad("stream ID must not contain control characters (it is the broker's message key)")
		}
	}
	return nil
}

func isWordChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}
