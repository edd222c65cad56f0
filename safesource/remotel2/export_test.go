package remotel2

// ForgetHeads empties what the source keeps of the heads it read (their refs
// and the safe block's payload), so that the next Heads fetches and verifies
// every head block again: a fuzz input is then checked on its own, not found
// among an earlier input's verified blocks.
func (s *Source) ForgetHeads() {
	s.refs.Purge()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.safePayload = nil
}
