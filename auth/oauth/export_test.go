package oauth

// RevocationState reports whether jti is in the server's set of revoked
// tokens and whether the set is trusted (see WatchRevocations).
func (s *Server) RevocationState(jti string) (inSet, trusted bool) {
	s.revs.mu.RLock()
	defer s.revs.mu.RUnlock()
	_, inSet = s.revs.ids[jti]
	return inSet, s.revs.trusted
}

// SweepRevocations drops the expired ids from the set now, as
// WatchRevocations does every revocationSweep.
func (s *Server) SweepRevocations() { s.revs.sweep(s.now().Add(-pruneGrace)) }
