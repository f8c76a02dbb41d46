package gateway

// places is a fixed number of places for requests being handled, taken without waiting: a
// request finding none is answered 429 at once instead of queueing (a queue would cost memory
// and run into the provider's timeout; the provider retries later).
type places chan struct{}

func (p places) take() bool {
	select {
	case p <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p places) release() { <-p }
