package main

import (
	"context"
	"errors"
	"io"
)

// runBench is the load tool; see package load.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("bench: not built yet")
}
