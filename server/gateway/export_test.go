package gateway

// InFlight returns how many places of h are taken: among MaxInFlight (authenticated) and among
// MaxUnverifiedInFlight. Tests wait on it to know that a slow request holds its place.
func InFlight(h *Handler) (authenticated, unverified int) {
	return len(h.inFlight), len(h.unverified)
}
