package eventlog_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/hookstream/hookstream/server/eventlog"
)

// BenchmarkAppend measures durable appends per second for 1 and 64 concurrent producers, with
// durability "always" and "os", in the same run for three ways to commit on the embedded server:
// "commit" is the log as Open makes it (pipelined plain publishes, then for "always" one fsync of
// the stream's files per commit, see blockSyncer); "serverbatch" is the first design (the server
// fsyncs every message, the committer sends atomic batches); "serverplain" is one plain publish
// per append with the server's fsync per message. Run with -cpu 2,8 to see GOMAXPROCS 2 and 8.
// Messages are 800 bytes, the size of a typical stored event.
func BenchmarkAppend(b *testing.B) {
	data := make([]byte, 800)
	modes := []struct {
		name     string
		open     func(context.Context, eventlog.Options) (*eventlog.Log, error)
		minBatch int
		workers  int
	}{
		{"commit", eventlog.Open, 0, 2},
		{"commit1", eventlog.Open, 0, 1},
		{"serverbatch", eventlog.OpenServerSync, eventlog.DefaultMinBatch, 2},
		{"serverplain", eventlog.OpenServerSync, 0, 1},
	}
	for _, durability := range []eventlog.Durability{eventlog.DurabilityAlways, eventlog.DurabilityOS} {
		for _, producers := range []int{1, 64} {
			for _, mode := range modes {
				name := fmt.Sprintf("%s/producers=%d/%s", durability, producers, mode.name)
				b.Run(name, func(b *testing.B) {
					l, err := mode.open(context.Background(), benchOptions(b.TempDir(), durability, mode.workers))
					if err != nil {
						b.Fatal(err)
					}
					defer l.Close()
					if mode.minBatch > 0 {
						l.EventsCommitter().SetMinBatch(mode.minBatch)
					}
					b.SetBytes(int64(len(data)))
					syscall.Sync() // start every run with no dirty pages of earlier runs to write back
					b.ResetTimer()
					// Exactly producers goroutines, whatever GOMAXPROCS (RunParallel would start a
					// multiple of it).
					var n atomic.Int64
					var wg sync.WaitGroup
					for range producers {
						wg.Go(func() {
							for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
								m := msg("hookstream.events.bench.x", strconv.FormatInt(i, 10), "")
								m.Data = data
								res, err := l.EventsCommitter().Append(context.Background(), m)
								if err != nil || res[0].Err != nil {
									b.Errorf("append: %v %v", err, res)
									return
								}
							}
						})
					}
					wg.Wait()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
					st := l.EventsCommitter().Stats()
					b.ReportMetric(float64(st.Batched+st.Published)/float64(max(st.Commits, 1)), "msgs/commit")
				})
			}
		}
	}
}

// BenchmarkCommitterBatchSize measures the cost per message of commits of a fixed size, as
// atomic batches and as plain publishes on a server that fsyncs every message, to place
// DefaultMinBatch (used with an external server).
func BenchmarkCommitterBatchSize(b *testing.B) {
	data := make([]byte, 800)
	for _, size := range []int{4, 8, 16, 32, 64} {
		for _, mode := range []struct {
			name     string
			minBatch int
		}{{"plain", 0}, {"batch", 1}} {
			b.Run(fmt.Sprintf("size=%d/%s", size, mode.name), func(b *testing.B) {
				l, err := eventlog.OpenServerSync(context.Background(), eventlog.DefaultOptions(b.TempDir()))
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				l.EventsCommitter().SetMinBatch(mode.minBatch)
				var n int
				b.ResetTimer()
				for range b.N {
					m := make([]*nats.Msg, 0, size)
					for range size {
						n++
						mm := msg("hookstream.events.bench.x", strconv.Itoa(n), "")
						mm.Data = data
						m = append(m, mm)
					}
					res, err := l.EventsCommitter().Append(context.Background(), m...)
					if err != nil || res[0].Err != nil {
						b.Fatalf("append: %v %v", err, res)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

func benchOptions(dir string, d eventlog.Durability, workers int) eventlog.Options {
	o := eventlog.DefaultOptions(dir)
	o.Durability = d
	if workers > 0 {
		o.CommitWorkers = workers
	}
	return o
}
