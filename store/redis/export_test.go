package redis

import "time"

// AddRestarts returns how many times s's adds started over because
// another process changed the collection first.
func AddRestarts(s *Store) int64 { return s.addRestarts.Load() }

// AddTurns returns how many turns (transactions) s's adds have run.
func AddTurns(s *Store) int64 { return s.addTurnsRun.Load() }

// RecentHits returns how many reads s answered from its latest adds.
func RecentHits(s *Store) int64 {
	s.recent.mu.Lock()
	defer s.recent.mu.Unlock()
	return s.recent.hits
}

// RecentKept returns the bytes and turns of records s keeps.
func RecentKept(s *Store) (bytes int64, turns int) {
	s.recent.mu.Lock()
	defer s.recent.mu.Unlock()
	return s.recent.size, s.recent.live
}

// SetRecentAge sets how long s keeps the records of an add.
func SetRecentAge(s *Store, d time.Duration) {
	s.recent.mu.Lock()
	defer s.recent.mu.Unlock()
	s.recent.age = d
}
