package natsjs

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Header names the broker adds to every message.
const (
	// HeaderMsgID is JetStream's de-duplication header; it carries
	// Message.ID.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderKey carries Message.Key when the key is not itself a valid
	// subject token.
	HeaderKey = "Cqrs-Key"
)

const (
	maxPlainKey   = 64 // longer keys are hashed into the token
	emptyKeyToken = "_"
)

// subject returns the subject of a message: <prefix>.<topic>.<key token>.
func subject(prefix, topic, token string) string {
	return prefix + "." + topic + "." + token
}

// filter returns the subject filter of a topic's consumers. A key token is
// a single word, so topics nested in one another ("a" and "a.b") never
// match each other's messages.
func filter(prefix, topic string) string { return prefix + "." + topic + ".*" }

// keyToken maps a message key to one subject token. Keys that are short
// words of ASCII letters, digits, '_' and '-' are used as they are
// ("product-0190..."); other keys become a readable prefix plus a hash,
// and plain reports false: the key then travels in HeaderKey. Two keys may
// share a token: they share a subject, which costs nothing, as order is
// per stream anyway.
func keyToken(key string) (token string, plain bool) {
	if key == "" {
		return emptyKeyToken, true
	}
	if len(key) <= maxPlainKey && key != emptyKeyToken && isWord(key) {
		return key, true
	}
	var b strings.Builder
	for i := 0; i < len(key) && b.Len() < 32; i++ {
		if c := key[i]; isWordChar(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('~')
	b.WriteString(hash64(key))
	return b.String(), false
}

// keyFromToken is the inverse of keyToken for plain keys.
func keyFromToken(token string) string {
	if token == emptyKeyToken {
		return ""
	}
	return token
}

// consumerName returns the durable consumer of a group on a topic:
// <group>_<topic with '.' as '_'>_<hash of both>. The hash keeps names
// unique where the readable part is ambiguous, and it is stable: changing
// it would orphan every group's position.
func consumerName(topic, group string) string {
	name := group + "_" + strings.ReplaceAll(topic, ".", "_")
	if len(name) > 180 {
		name = name[:180]
	}
	h := fnv.New32a()
	h.Write([]byte(group))
	h.Write([]byte{0})
	h.Write([]byte(topic))
	return name + "_" + strconv.FormatUint(uint64(h.Sum32()), 16)
}

func hash64(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return strconv.FormatUint(h.Sum64(), 16)
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWordChar(s[i]) {
			return false
		}
	}
	return true
}

func isWordChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// subjectCovers reports whether the stream subject pattern s captures every
// subject matched by filter f.
func subjectCovers(s, f string) bool {
	st, ft := strings.Split(s, "."), strings.Split(f, ".")
	for i, tok := range st {
		if tok == ">" {
			return i < len(ft)
		}
		if i >= len(ft) {
			return false
		}
		switch {
		case tok == "*":
			if ft[i] == ">" {
				return false
			}
		case tok != ft[i]:
			return false
		}
	}
	return len(st) == len(ft)
}
