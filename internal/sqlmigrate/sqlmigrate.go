// Package sqlmigrate renders the SQL stores' embedded goose migrations
// and reports which of them a database has applied. store/postgres and
// store/sqlite share it; each keeps its own SQL and version-table query.
package sqlmigrate

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"testing/fstest"
	"text/template"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/cqrskit/cqrskit/store"
)

// Render executes every file of files matching pattern as a text/template
// with data (a missing key is an error) and returns the results in an
// in-memory file system, by base name, in goose's file format.
func Render(files fs.FS, pattern string, data any) (fstest.MapFS, error) {
	names, err := fs.Glob(files, pattern)
	if err != nil {
		return nil, err
	}
	out := fstest.MapFS{}
	for _, name := range names {
		src, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("parse migration %s: %w", name, err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("render migration %s: %w", name, err)
		}
		out[path.Base(name)] = &fstest.MapFile{Data: b.Bytes(), Mode: 0o444}
	}
	return out, nil
}

// States lists the migrations of files (*.sql, in name order), each
// applied, at its time, if applied has its version.
func States(files fs.FS, applied map[int64]time.Time) ([]store.Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	out := make([]store.Migration, 0, len(names))
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		at, ok := applied[v]
		out = append(out, store.Migration{Version: v, Name: name, Applied: ok, AppliedAt: at})
	}
	return out, nil
}
