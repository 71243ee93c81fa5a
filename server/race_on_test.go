//go:build race

package server_test

// raceDetector reports a test binary built with -race, whose CPU-bound
// code (password hashing) runs many times slower than in the gateway.
const raceDetector = true
