package eventlog

import "context"

// OpenServerSync opens an embedded log whose server fsyncs every message (sync_always) and whose
// committers send atomic batches: the group commit of the first design, the baseline the
// benchmarks compare blockSyncer with.
func OpenServerSync(ctx context.Context, o Options) (*Log, error) {
	o.serverSync = true
	return Open(ctx, o)
}
