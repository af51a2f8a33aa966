//go:build race

package main

// raceTest is whether these tests run with -race: then the fault-injection
// binary is built with the race detector too.
const raceTest = true
