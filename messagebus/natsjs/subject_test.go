package natsjs

import (
	"strings"
	"testing"
	"unicode"
)

func TestKeyToken(t *testing.T) {
	for _, tt := range []struct {
		key, token string
		plain      bool
	}{
		{"", "_", true},
		{"product-0190f3a2", "product-0190f3a2", true},
		{"Order_7", "Order_7", true},
		{"_", "_~", false},
		{"order.42", "order_42~", false},
		{"a b*c>d", "a_b_c_d~", false},
		{strings.Repeat("x", 65), strings.Repeat("x", 32) + "~", false},
		{"käse", "k__se~", false},
	} {
		token, plain := keyToken(tt.key)
		if plain != tt.plain || !strings.HasPrefix(token, tt.token) || plain && token != tt.token {
			t.Errorf("keyToken(%q) = %q, %v; want %q..., %v", tt.key, token, plain, tt.token, tt.plain)
		}
	}
	a, _ := keyToken("order.42")
	b, _ := keyToken("order/42")
	if a == b {
		t.Errorf("keys order.42 and order/42 share the token %q", a)
	}
}

func FuzzKeyToken(f *testing.F) {
	for _, k := range []string{"", "_", "product-1", "a.b", "x*>y", "ü", strings.Repeat("k", 100)} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		token, plain := keyToken(key)
		if token == "" || len(token) > 64 {
			t.Fatalf("keyToken(%q) = %q: empty or too long", key, token)
		}
		for _, r := range token {
			if r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || r > unicode.MaxASCII || r < ' ' {
				t.Fatalf("keyToken(%q) = %q: not a single subject token", key, token)
			}
		}
		if again, _ := keyToken(key); again != token {
			t.Fatalf("keyToken(%q) not deterministic: %q then %q", key, token, again)
		}
		if plain && keyFromToken(token) != key {
			t.Fatalf("plain key %q came back as %q", key, keyFromToken(token))
		}
	})
}

func TestConsumerName(t *testing.T) {
	n := consumerName("product.audit", "billing")
	if !strings.HasPrefix(n, "billing_product_audit_") || strings.ContainsAny(n, ".*> ") {
		t.Errorf("consumerName = %q", n)
	}
	if consumerName("a__b", "c") == consumerName("b", "c__a") || consumerName("a.b", "g") == consumerName("a_b", "g") {
		t.Error("distinct group and topic pairs share a consumer name")
	}
	long := consumerName(strings.Repeat("t", 200), strings.Repeat("g", 128))
	if len(long) > 200 {
		t.Errorf("consumer name is %d bytes", len(long))
	}
}

func TestSubjectCovers(t *testing.T) {
	for _, tt := range []struct {
		stream, filter string
		want           bool
	}{
		{">", "cqrskit.>", true},
		{"cqrskit.>", "cqrskit.>", true},
		{"cqrskit.*", "cqrskit.>", false},
		{"other.>", "cqrskit.>", false},
		{"cqrskit.>", "cqrskit", false},
		{"*.>", "cqrskit.>", true},
		{"cqrskit", "cqrskit.>", false},
	} {
		if got := subjectCovers(tt.stream, tt.filter); got != tt.want {
			t.Errorf("subjectCovers(%q, %q) = %v, want %v", tt.stream, tt.filter, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("nats://alice:secret@a:4222, nats://token@b:4222,nats://c:4222")
	if strings.Contains(got, "secret") || strings.Contains(got, "token") || !strings.Contains(got, "c:4222") {
		t.Errorf("redact = %q", got)
	}
}
