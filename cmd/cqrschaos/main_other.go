//go:build !unix

package main

import (
	"fmt"
	"os"
)

// The suite signals, starts and stops processes the Unix way.
func main() {
	fmt.Fprintln(os.Stderr, "cqrschaos: needs a Unix system")
	os.Exit(1)
}
