package redis

// AddRestarts returns how many times s's adds started over because
// another process changed the collection first.
func AddRestarts(s *Store) int64 { return s.addRestarts.Load() }
