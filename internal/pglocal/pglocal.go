//go:build unix

// Package pglocal finds local PostgreSQL server binaries and the user to run
// them as, for the helpers that start a private server with initdb and
// pg_ctl (pgtest.New and cqrschaos).
package pglocal

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// FindBin returns a directory holding initdb and pg_ctl: dir when given,
// else the one of initdb on PATH, else the newest /usr/lib/postgresql/*/bin.
func FindBin(dir string) (string, error) {
	var dirs []string
	if dir != "" {
		dirs = []string{dir}
	} else {
		if p, err := exec.LookPath("initdb"); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
		versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		slices.SortFunc(versions, func(a, b string) int { // newest first
			va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
			vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
			return vb - va
		})
		dirs = append(dirs, versions...)
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if dir != "" {
		return "", errors.New("initdb and pg_ctl not found in " + dir)
	}
	return "", errors.New("initdb and pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Credential returns nil when not running as root, and otherwise the
// credential and name of a user initdb accepts (postgres, else nobody):
// initdb refuses to run as root.
func Credential() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, name, nil
	}
	return nil, "", errors.New("running as root, and neither a postgres nor a nobody user exists to run initdb as (initdb refuses root)")
}
