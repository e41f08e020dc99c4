package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func decodeReq(body, contentType string, limit int64) error {
	var (
		name  string
		count int64
	)
	req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return decodeBody(httptest.NewRecorder(), req, limit,
		field{"name", &name, true}, field{"count", &count, false})
}

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		name, body, ct string
		status         int // 0: success
		field          string
	}{
		{"ok", `{"name":"a","count":2}`, "application/json", 0, ""},
		{"charset", `{"name":"a"}`, "application/json; charset=utf-8", 0, ""},
		{"vendor json", `{"name":"a"}`, "application/vnd.sample+json", 0, ""},
		{"optional null", `{"name":"a","count":null}`, "application/json", 0, ""},
		{"white space after", "{\"name\":\"a\"}\n\t ", "application/json", 0, ""},
		{"no content type", `{"name":"a"}`, "", 415, "Content-Type"},
		{"text", `{"name":"a"}`, "text/plain", 415, "Content-Type"},
		{"bad media type", `{"name":"a"}`, "json;;", 415, "Content-Type"},
		{"empty", ``, "application/json", 400, ""},
		{"syntax", `{"name":}`, "application/json", 400, ""},
		{"truncated", `{"name":"a"`, "application/json", 400, ""},
		{"array", `[]`, "application/json", 400, ""},
		{"string", `"x"`, "application/json", 400, ""},
		{"null", `null`, "application/json", 400, ""},
		{"two objects", `{"name":"a"}{"name":"b"}`, "application/json", 400, ""},
		{"garbage after", `{"name":"a"} x`, "application/json", 400, ""},
		{"unknown", `{"name":"a","zzz":1,"aaa":2}`, "application/json", 400, "aaa"},
		{"missing", `{"count":1}`, "application/json", 400, "name"},
		{"required null", `{"name":null}`, "application/json", 400, "name"},
		{"string for int", `{"name":"a","count":"1"}`, "application/json", 400, "count"},
		{"float for int", `{"name":"a","count":1.5}`, "application/json", 400, "count"},
		{"overflow", `{"name":"a","count":99999999999999999999}`, "application/json", 400, "count"},
		{"int for string", `{"name":1}`, "application/json", 400, "name"},
		{"repeated key", `{"name":"a","name":1}`, "application/json", 400, "name"},
		{"repeated key, same value", `{"count":1,"name":"a","count":1}`, "application/json", 400, "count"},
		{"repeated key, escaped", `{"name":"a","n\u0061me":"b"}`, "application/json", 400, "name"},
		{"repeated unknown key", `{"name":"a","zz":1,"zz":2}`, "application/json", 400, "zz"},
		{"equal keys in a nested object", `{"name":{"a":1,"a":2}}`, "application/json", 400, "name"},
		{"too large", `{"name":"` + strings.Repeat("x", 100) + `"}`, "application/json", 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeReq(tt.body, tt.ct, 64)
			var re *requestError
			switch {
			case tt.status == 0 && err != nil:
				t.Fatalf("err = %v", err)
			case tt.status == 0:
			case !errors.As(err, &re):
				t.Fatalf("err = %v, want a requestError", err)
			case re.status != tt.status || re.field != tt.field:
				t.Fatalf("status %d field %q (%v), want %d %q", re.status, re.field, re.msg, tt.status, tt.field)
			}
		})
	}
}

func TestIfMatch(t *testing.T) {
	for h, want := range map[string]int64{"": 0, "*": 0, "3": 3, `"3"`: 3, `W/"12"`: 12, " 7 ": 7, "0": -1, "x": -1, `"`: -1, "-2": -1, "1, 2": -1} {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		if h != "" {
			req.Header.Set("If-Match", h)
		}
		got, err := ifMatch(req)
		if want < 0 {
			var re *requestError
			if !errors.As(err, &re) || re.field != "If-Match" || re.status != 400 {
				t.Errorf("If-Match %q: %d, %v; want a 400 on If-Match", h, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("If-Match %q: %d, %v; want %d", h, got, err, want)
		}
	}
}

// FuzzDecodeBody: any body gives a result or a 400/413, never a panic or
// another status.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"name":"a","count":2}`, `{`, `[]`, `{"name":null}`, `{"x":1}`, `{"name":"a"} {}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		err := decodeReq(body, "application/json", 256)
		var re *requestError
		if err != nil && (!errors.As(err, &re) || (re.status != 400 && re.status != 413)) {
			t.Fatalf("body %q: %v", body, err)
		}
	})
}

// TestDecodeBodyRepeatedKeyMessage: the 400 for a repeated key names it.
func TestDecodeBodyRepeatedKeyMessage(t *testing.T) {
	err := decodeReq(`{"name":"a","count":1,"name":"b"}`, "application/json", 256)
	var re *requestError
	if !errors.As(err, &re) || re.status != 400 || re.field != "name" || re.msg != `field "name" appears more than once` {
		t.Fatalf("err = %#v, want a 400 on name saying it appears more than once", err)
	}
}
