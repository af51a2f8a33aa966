//go:build !race

package main

// raceTest is whether these tests run with -race (see race_on_test.go).
const raceTest = false
