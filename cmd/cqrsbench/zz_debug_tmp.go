package main

import (
	"os"
	"runtime/pprof"
	"time"
)

func init() {
	if d, err := time.ParseDuration(os.Getenv("CQRSBENCH_DUMP")); err == nil {
		go func() {
			time.Sleep(d)
			f, _ := os.Create("/tmp/goroutines.txt")
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		}()
	}
}
