package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// field is one member of a JSON request body: its name, where to decode
// it, and whether it must be present (and not null).
type field struct {
	name     string
	dst      any
	required bool
}

// decodeBody reads r's body as one JSON object whose members are exactly
// fields (unknown members are rejected by name) into their destinations.
// Its errors are *requestError: 415 for a body that is not JSON, 413 for
// one over limit bytes, 400 for anything else, naming the member at fault.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, fields ...field) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &requestError{status: http.StatusUnsupportedMediaType, field: "Content-Type",
			msg: fmt.Sprintf("request body must be JSON (Content-Type: application/json), not %q", r.Header.Get("Content-Type"))}
	}
	tooLarge := &requestError{status: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("request body is larger than %d bytes", limit)}
	if r.ContentLength > limit {
		return tooLarge
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge
	case err != nil:
		// A connection error: its text names sockets, not the request.
		return badRequest("", "cannot read the request body")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var obj map[string]json.RawMessage
	err = dec.Decode(&obj)
	if err == nil {
		// Anything after the object, other than white space, is an error.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
			if terr != nil {
				err = terr
			}
		}
	}
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case err == nil && obj == nil:
		return badRequest("", "request body must be a JSON object, not null")
	case err == nil:
	case errors.Is(err, io.EOF):
		return badRequest("", "request body is empty; want a JSON object")
	case errors.As(err, &te):
		return badRequest("", "request body must be a JSON object")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errTrailing):
		return badRequest("", "request body is not valid JSON: "+err.Error())
	default:
		return badRequest("", "request body is not valid JSON")
	}
	// A map keeps the last of two equal keys; which one the client meant
	// is anyone's guess, so a repeated key is an error.
	if name, ok := repeatedKey(data); ok {
		return badRequest(name, fmt.Sprintf("field %q appears more than once", name))
	}
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.ContainsFunc(fields, func(f field) bool { return f.name == name }) {
			return badRequest(name, fmt.Sprintf("unknown field %q", name))
		}
	}
	for _, f := range fields {
		raw, ok := obj[f.name]
		if !ok || string(raw) == "null" {
			if f.required {
				return badRequest(f.name, fmt.Sprintf("field %q is required", f.name))
			}
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return badRequest(f.name, fmt.Sprintf("field %q must be %s", f.name, kindOf(f.dst)))
		}
	}
	return nil
}

var errTrailing = errors.New("unexpected data after the JSON object")

// repeatedKey returns the first member name that occurs twice in data, a
// valid JSON object, comparing names after unescaping ("n\u0061me" is
// "name").
func repeatedKey(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		name, _ := tok.(string)
		if seen[name] {
			return name, true
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

func kindOf(dst any) string {
	switch dst.(type) {
	case *string:
		return "a string"
	case *int64:
		return "an integer"
	}
	return "valid"
}

// queryInt parses an optional integer query parameter within [min, max].
func queryInt(r *http.Request, name string, def, min, max int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		return 0, badRequest(name, fmt.Sprintf("query parameter %s=%q: want an integer from %d to %d", name, s, min, max))
	}
	return n, nil
}

// ifMatch parses the If-Match header: a version, bare or as an entity tag
// ("3", W/"3"). It returns 0 when the header is absent or "*".
func ifMatch(r *http.Request) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	v := strings.TrimPrefix(h, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequest("If-Match", fmt.Sprintf("If-Match %q: want the product's version, a positive integer", h))
	}
	return n, nil
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }
