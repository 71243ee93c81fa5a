package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// actor is one long-running part of serve: run works until its context
// ends (or it fails) and returns; it must return promptly once ctx is
// done, having finished what it must finish (the HTTP server its
// requests, fan-out a last pass).
type actor struct {
	name string
	run  func(ctx context.Context) error
}

// group runs actors together, as Prometheus's run.Group does, but stops
// them in a fixed order: when the parent context ends or any actor
// returns, every actor is stopped one after the other in the order they
// were added (each given the chance to finish before the next is asked),
// and Run returns the first actor's error, named. An actor that returns
// nil before it is asked to stop is a failure too ("stopped by itself"):
// nothing in serve may end quietly.
type group struct {
	actors []actor
	log    *slog.Logger
}

func (g *group) add(name string, run func(ctx context.Context) error) {
	g.actors = append(g.actors, actor{name: name, run: run})
}

// Run runs every actor until ctx ends or one of them returns, then stops
// them in order; it returns when all have returned.
func (g *group) Run(ctx context.Context) error {
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(g.actors))
	cancels := make([]context.CancelFunc, len(g.actors))
	done := make([]chan struct{}, len(g.actors))
	var errs []error
	var mu sync.Mutex
	for i, a := range g.actors {
		actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i], done[i] = cancel, make(chan struct{})
		go func() {
			defer close(done[i])
			err := a.run(actx)
			if err == nil && actx.Err() == nil {
				err = errors.New("stopped by itself")
			}
			if err != nil && actx.Err() == nil {
				err = fmt.Errorf("%s: %w", a.name, err)
			} else if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: stopping: %w", a.name, err))
				mu.Unlock()
				err = nil
			}
			results <- result{i, err}
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case r := <-results:
		first = r.err
		if g.log != nil && first != nil {
			g.log.Error("a part of the gateway failed; stopping the others", "err", first)
		}
	}
	for i, a := range g.actors {
		cancels[i]()
		<-done[i]
		if g.log != nil {
			g.log.Debug("stopped", "part", a.name)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return first
	}
	return errors.Join(errs...)
}
