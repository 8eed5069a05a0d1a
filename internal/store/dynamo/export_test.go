package dynamo

// QueuedWrites reports how many fenced writes of s's batcher wait for a
// call: tests hold a call open and queue writes behind it.
func QueuedWrites(s *Store) int {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	n := 0
	for _, g := range s.batch.groups {
		for _, bw := range g.queue {
			if !bw.taken {
				n++
			}
		}
	}
	return n
}
