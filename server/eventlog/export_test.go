package eventlog

import (
	"context"

	"github.com/hookstream/hookstream/server/config"
	"github.com/nats-io/nats.go/jetstream"
)

// OpenServerSync opens an embedded log whose server fsyncs every message (sync_always) and whose
// committers send atomic batches: the group commit of the first design, the baseline the
// benchmarks compare blockSyncer with.
func OpenServerSync(ctx context.Context, o Options) (*Log, error) {
	o.serverSync = true
	return Open(ctx, o)
}

// DefaultOptions returns the default options (package config's defaults) with the embedded server
// storing in dir.
func DefaultOptions(dir string) Options {
	o := OptionsFrom(config.Default())
	o.DataDir = dir
	return o
}

// EventsCommitter is the committer of the events stream, for tests and benchmarks of the
// committer itself.
func (l *Log) EventsCommitter() *Committer { return l.events }

// JetStream is the log's JetStream context, for tests that look at the streams themselves.
func (l *Log) JetStream() jetstream.JetStream { return l.js }
