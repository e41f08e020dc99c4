//go:build !race

package faultmodel_test

const raceEnabled = false
