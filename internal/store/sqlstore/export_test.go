package sqlstore

// MaxOpenConns is the size of s's write pool.
func MaxOpenConns(s *Store) int { return s.w.Stats().MaxOpenConnections }
