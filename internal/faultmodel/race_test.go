//go:build race

package faultmodel_test

// raceEnabled halves the short CI set under the race detector, which runs
// the model about five times slower, to keep the CI run under a minute.
const raceEnabled = true
