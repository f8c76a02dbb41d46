package eventlog

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/server/internal/natstest"
)

// retries is a slog handler that passes every record to next and signals each start-up retry
// on its channel.
type retries struct {
	slog.Handler
	c chan struct{}
}

func (r retries) Handle(ctx context.Context, rec slog.Record) error {
	if strings.Contains(rec.Message, "retrying") {
		select {
		case r.c <- struct{}{}:
		default:
		}
	}
	return r.Handler.Handle(ctx, rec)
}

// TestOpenWaitsForCluster opens a log on a 3-node cluster that is not up yet: Open retries
// (logging each retry) while no node answers, then while one node runs without quorum, and
// opens once all three are up; the streams take appends at once. A cluster that never comes up
// makes Open give up after the start timeout with ErrUnavailable.
func TestOpenWaitsForCluster(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		nodes bool // whether the nodes come up while Open retries
	}{
		{name: "nodes_come_up_later", nodes: true},
		{name: "never_up_gives_up", nodes: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := natstest.NewCluster(t, 3)
			r := retries{Handler: testLogger(t).Handler(), c: make(chan struct{}, 1)}
			o := DefaultOptions("")
			o.URL, o.Replicas, o.Logger = c.URLs(), 3, slog.New(r)
			if !tt.nodes {
				o.StartTimeout = 2 * time.Second
			}
			type opened struct {
				l   *Log
				err error
			}
			done := make(chan opened, 1)
			go func() {
				l, err := Open(context.Background(), o)
				done <- opened{l, err}
			}()
			if !tt.nodes {
				if got := <-done; !errors.Is(got.err, ErrUnavailable) {
					t.Fatalf("Open with no node up: got %v, want ErrUnavailable", got.err)
				}
				return
			}
			<-r.c // no node answers
			c.Start(0)
			<-r.c // a retry after node 0 came up: one node of three has no quorum
			c.Start(1)
			c.Start(2)
			got := <-done
			if got.err != nil {
				t.Fatalf("Open: %v", got.err)
			}
			t.Cleanup(func() { got.l.Close() })
			acked := map[string]uint64{}
			res, err := appendWithin(got.l.events, "first", 15*time.Second)
			if err != nil {
				t.Fatalf("append after Open: %v", err)
			}
			acked["first"] = res.Sequence
			checkStored(t, got.l.js, acked)
		})
	}
}

// TestHealthNoticesLostQuorum: a healthy log on a cluster that loses its quorum turns failing by
// itself, with no append to find out, and healthy again once a node is back.
func TestHealthNoticesLostQuorum(t *testing.T) {
	t.Parallel()
	c := natstest.NewCluster(t, 3)
	for i := range 3 {
		c.Start(i)
	}
	o := DefaultOptions("")
	o.URL, o.Replicas, o.Logger = c.URLs(), 3, testLogger(t)
	l, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	waitHealthy := func(what string, want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for (l.Healthy() == nil) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: Healthy() = %v after 30 s", what, l.Healthy())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitHealthy("cluster up", true)
	leader := c.WaitStream(EventsStream)
	down := []int{leader, (leader + 1) % 3}
	for _, n := range down {
		c.Stop(n)
	}
	waitHealthy("two nodes of three down", false)
	if err := l.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Healthy without quorum: got %v, want ErrUnavailable", err)
	}
	for _, n := range down {
		c.Start(n)
	}
	waitHealthy("nodes back", true)
}
