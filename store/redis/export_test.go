package redis

// AddRestarts returns how many times s's adds started over because
// another process changed the collection first.
func AddRestarts(s *Store) int64 { return s.addRestarts.Load() }

// AddTurns returns how many turns (transactions) s's adds have run.
func AddTurns(s *Store) int64 { return s.addTurnsRun.Load() }
