package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/natstest"
)

// clusterToken is the MVMNT x-api-key of the daemons of the cluster test.
const clusterToken = "cluster-test-token"

// Bounds of the cluster test: every wait gives up (and fails the test) after clusterWait, and
// each steady stretch is steadyRequests answers of every sender.
const (
	clusterSenders = 4
	clusterWait    = time.Minute
	steadyRequests = 20
)

// phaseKind says what a phase of the cluster test allows.
type phaseKind int

const (
	// recovering: any answer 2xx or 503 (the cluster is coming up or electing a leader).
	recovering phaseKind = iota
	// settled: every node up and current; every request sent and answered in it is 2xx.
	settled
	// noQuorum: two nodes of three down; no request sent and answered in it is stored.
	noQuorum
)

// phase is one stretch of the cluster test.
type phase struct {
	name    string
	kind    phaseKind
	started time.Time
}

// answer is what one request of the cluster test's load got.
type answer struct {
	sender  int
	daemon  int // which daemon it was sent to
	id      string
	sent    int // the phase when it was sent
	got     int // the phase when it was answered
	status  int // 0: no HTTP answer
	outcome hookstreamv1.Receipt_Outcome
	at      time.Time
}

// clusterLoad sends signed MVMNT deliveries from clusterSenders goroutines, each alternating
// between the daemons (a load balancer) and retrying a delivery until it is answered 2xx, as a
// provider does. Every answer is kept with the phase it was sent and answered in.
type clusterLoad struct {
	urls []string

	mu      sync.Mutex
	phase   int // the current one, an index of phases
	phases  []phase
	answers []answer

	stop context.CancelFunc
	wg   sync.WaitGroup
}

func startLoad(urls []string) *clusterLoad {
	ctx, stop := context.WithCancel(context.Background())
	l := &clusterLoad{urls: urls, stop: stop, phases: []phase{{name: "warm up", kind: recovering, started: time.Now()}}}
	client := &http.Client{Timeout: 30 * time.Second}
	for k := range clusterSenders {
		l.wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				id := fmt.Sprintf("660e8400-e29b-41d4-%04d-%012d", k, n)
				for try := 0; ctx.Err() == nil; try++ {
					if a := l.send(ctx, client, k, id, (n+try)%len(l.urls)); a.status/100 == 2 {
						break
					}
					time.Sleep(20 * time.Millisecond) // Retry-After is whole seconds: too slow here
				}
			}
		})
	}
	return l
}

func (l *clusterLoad) send(ctx context.Context, client *http.Client, sender int, id string, daemon int) answer {
	url := l.urls[daemon]
	body := fmt.Sprintf(`{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":%q}}]}`, id)
	a := answer{sender: sender, daemon: daemon, id: id, sent: l.current()}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/webhooks/mvmnt", bytes.NewReader([]byte(body)))
	req.Header.Set("X-Api-Key", clusterToken)
	resp, err := client.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.status = resp.StatusCode
		var r hookstreamv1.ReceiveMvmntDeliveryResponse
		if a.status == http.StatusOK && protojson.Unmarshal(b, &r) == nil && len(r.GetReceipts()) == 1 {
			a.outcome = r.GetReceipts()[0].GetOutcome()
		}
	}
	if ctx.Err() != nil {
		return a // cut by the end of the load: not an answer
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a.got, a.at = l.phase, time.Now()
	l.answers = append(l.answers, a)
	return a
}

func (l *clusterLoad) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase
}

// next starts a phase.
func (l *clusterLoad) next(name string, kind phaseKind) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase++
	l.phases = append(l.phases, phase{name: name, kind: kind, started: time.Now()})
}

// await waits until every sender has n answers sent and answered in the current phase that
// satisfy ok.
func (l *clusterLoad) await(t *testing.T, what string, n int, ok func(answer) bool) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		l.mu.Lock()
		counts := make([]int, clusterSenders)
		for _, a := range l.answers {
			if a.sent == l.phase && a.got == l.phase && ok(a) {
				counts[a.sender]++
			}
		}
		l.mu.Unlock()
		if slices.Min(counts) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (answers per sender %v)", what, clusterWait, counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitDaemons waits until every daemon has answered 2xx a request sent and answered in the
// current phase: each has recovered by itself.
func (l *clusterLoad) awaitDaemons(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		l.mu.Lock()
		recovered := make([]bool, len(l.urls))
		for _, a := range l.answers {
			if a.sent == l.phase && a.got == l.phase && ok2xx(a) {
				recovered[a.daemon] = true
			}
		}
		l.mu.Unlock()
		if !slices.Contains(recovered, false) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: a daemon did not recover within %v (recovered %v)", what, clusterWait, recovered)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ok2xx(a answer) bool { return a.status/100 == 2 }

// end stops the senders and returns every answer.
func (l *clusterLoad) end() []answer {
	l.stop()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers
}

// TestClusterFaults runs two hookstream daemons, started before the cluster is up, on a real
// 3-node JetStream cluster with 3 replicas, under HTTP load from senders that alternate between
// them and retry until 2xx. It stops the stream leader, then a follower, then two nodes (no
// quorum), each time starting them again, without restarting hookstream. It asserts that every
// answer is 2xx or 503; that each daemon recovers by itself after each fault (a node restarted
// with a stale view of the cluster answers its clients' publishes with no responders: the log
// moves its connection to another node); that all are 2xx while the cluster is whole and settled; that nothing is
// stored (a 2xx of a stored receipt) while two nodes are down; that each delivery answered 2xx is
// stored exactly once; and that the two daemons serve one consumer group, each event delivered to
// exactly one of them. It logs how long each fault stalled the 2xx answers.
func TestClusterFaults(t *testing.T) {
	t.Parallel()
	c := natstest.NewCluster(t, 3)
	servers := startOnCluster(t, c, 2)
	var urls []string
	for _, s := range servers {
		urls = append(urls, "http://"+s.HTTPAddr().String())
	}
	load := startLoad(urls)
	defer load.end()
	load.await(t, "warm up", steadyRequests, ok2xx)
	load.next("settled", settled)
	load.await(t, "settled", steadyRequests, ok2xx)

	leader := c.WaitStream(eventlog.EventsStream)
	fault(t, c, load, fmt.Sprintf("stream leader n%d down", leader), leader)
	follower := (c.WaitStream(eventlog.EventsStream) + 1) % 3
	fault(t, c, load, fmt.Sprintf("follower n%d down", follower), follower)
	two := []int{follower, (follower + 1) % 3}
	fault(t, c, load, fmt.Sprintf("n%d and n%d down: no quorum", two[0], two[1]), two...)

	answers := load.end()
	checkAnswers(t, load, answers)
	conn := dialGRPC(t, servers[0])
	stored := storedByKey(t, conn)
	checkStoredOnce(t, answers, stored)
	consumeGroup(t, servers, len(stored))
}

// startOnCluster makes n daemons on c before starting its nodes, so that they wait for it, and
// runs them until the test ends.
func startOnCluster(t *testing.T, c *natstest.Cluster, n int) []*daemon.Server {
	t.Helper()
	type made struct {
		s   *daemon.Server
		err error
	}
	madeC := make(chan made, n)
	for range n {
		cfg := config.Default()
		cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
		cfg.EventLog.NATSURL, cfg.EventLog.Replicas = c.URLs(), 3
		cfg.Providers.MVMNT.Tokens = []string{clusterToken}
		go func() {
			s, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			madeC <- made{s, err}
		}()
	}
	for i := range 3 {
		c.Start(i)
	}
	var servers []*daemon.Server
	for range n {
		m := <-madeC
		if m.err != nil {
			t.Fatalf("daemon.New on a cluster coming up: %v", m.err)
		}
		runServer(t, m.s)
		servers = append(servers, m.s)
	}
	return servers
}

// fault stops nodes, waits (bounded) for the load to be answered as the fault allows, starts
// them again and waits until every sender has been answered 2xx, then steadyRequests times more.
func fault(t *testing.T, c *natstest.Cluster, load *clusterLoad, name string, nodes ...int) {
	t.Helper()
	if len(nodes) == 1 {
		load.next(name, recovering)
		stopNodes(c, nodes)
		load.await(t, name, 1, ok2xx) // quorum is left: appends go on once a leader is elected
	} else {
		// The phase starts once the nodes are down: a request answered before was sent with quorum.
		stopNodes(c, nodes)
		load.next(name, noQuorum)
		load.await(t, name, 3, func(a answer) bool { return a.status == http.StatusServiceUnavailable })
	}
	load.next(name+", restarted", recovering)
	for _, n := range nodes {
		c.Start(n)
	}
	load.await(t, name+", restarted", 1, ok2xx)
	load.awaitDaemons(t, name+", restarted")
	// Settled begins once every node is current again: a request sent while the restarted node
	// catches up belongs to the recovery.
	c.WaitStream(eventlog.EventsStream)
	load.next(name+", settled", settled)
	load.await(t, name+", settled", steadyRequests, ok2xx)
}

func stopNodes(c *natstest.Cluster, nodes []int) {
	for _, n := range nodes {
		c.Stop(n)
	}
}

// checkAnswers checks the answers phase by phase (see phaseKind) and logs each phase's counts and
// stall: the longest time without a 2xx answer, from the phase's start.
func checkAnswers(t *testing.T, load *clusterLoad, answers []answer) {
	t.Helper()
	type stats struct {
		ok, unavailable, duplicate int
		last                       time.Time
		stall                      time.Duration
	}
	per := make([]stats, len(load.phases))
	for i := range per {
		per[i].last = load.phases[i].started
	}
	for _, a := range answers {
		p, st := load.phases[a.got], &per[a.got]
		switch {
		case a.status/100 == 2:
			st.ok++
			if a.outcome == hookstreamv1.Receipt_OUTCOME_DUPLICATE {
				st.duplicate++
			}
			st.stall = max(st.stall, a.at.Sub(st.last))
			st.last = a.at
		case a.status == http.StatusServiceUnavailable:
			st.unavailable++
		default:
			t.Errorf("%s: %s answered %d, want 2xx or 503", p.name, a.id, a.status)
		}
		if a.sent != a.got {
			continue
		}
		if p.kind == noQuorum && a.outcome == hookstreamv1.Receipt_OUTCOME_STORED {
			t.Errorf("%s: %s answered %d, stored, while two nodes of three were down", p.name, a.id, a.status)
		}
		if p.kind == settled && a.status/100 != 2 {
			t.Errorf("%s: %s answered %d, want 2xx on a settled cluster", p.name, a.id, a.status)
		}
	}
	for i, st := range per {
		t.Logf("%-44s %6d 2xx (%d duplicates) %5d 503, longest without a 2xx %v", load.phases[i].name, st.ok, st.duplicate, st.unavailable, st.stall.Round(time.Millisecond))
	}
}

func dialGRPC(t *testing.T, s *daemon.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// storedByKey returns how many times each dedup key is stored, and at which sequence.
func storedByKey(t *testing.T, conn *grpc.ClientConn) map[string][]uint64 {
	t.Helper()
	events := hookstreamv1.NewEventServiceClient(conn)
	stored := map[string][]uint64{}
	req := &hookstreamv1.ListEventsRequest{PageSize: 1000}
	deadline := time.Now().Add(clusterWait)
	for {
		page, err := events.ListEvents(context.Background(), req)
		if status.Code(err) == codes.Unavailable && time.Now().Before(deadline) {
			// What UNAVAILABLE asks of a client: a replica may still be catching up.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.GetEvents() {
			stored[e.GetDedupKey()] = append(stored[e.GetDedupKey()], e.GetSequence())
		}
		if page.GetNextPageToken() == "" {
			return stored
		}
		req.PageToken = page.GetNextPageToken()
	}
}

// checkStoredOnce checks that every delivery answered 2xx is stored exactly once, and that
// nothing else is stored more than once.
func checkStoredOnce(t *testing.T, answers []answer, stored map[string][]uint64) {
	t.Helper()
	acked := map[string]bool{}
	for _, a := range answers {
		if a.status/100 == 2 {
			acked["SHIPMENT_DELIVERED/"+a.id+"/2025-01-15T14:30:00Z"] = true
		}
	}
	for key := range acked {
		if n := len(stored[key]); n != 1 {
			t.Errorf("%s answered 2xx, stored %d times, want once", key, n)
		}
	}
	for key, seqs := range stored {
		if len(seqs) > 1 {
			t.Errorf("%s stored %d times (sequences %v), want once", key, len(seqs), seqs)
		}
	}
	t.Logf("%d deliveries answered 2xx, %d stored", len(acked), len(stored))
}

// consumeGroup subscribes one consumer group through each of servers, acking every event at once,
// until want events have been delivered: each must be delivered once, to one member, as its
// first delivery attempt, and each member must have served some.
func consumeGroup(t *testing.T, servers []*daemon.Server, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	var mu sync.Mutex
	delivered := map[uint64][]int{} // sequence: the members it went to
	perMember := make([]int, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	var subscribed sync.WaitGroup // every member subscribes before any reads: each gets a share
	subscribed.Add(len(servers))
	// A member holds the acks of its first events until every member has some: otherwise the
	// first to fetch can drain the stream before the others' first fetch reaches the server.
	first := make([]chan struct{}, len(servers))
	for i := range first {
		first[i] = make(chan struct{})
	}
	for i, s := range servers {
		client := hookstreamv1.NewEventServiceClient(dialGRPC(t, s))
		firstAck := func() {
			close(first[i])
			for _, c := range first {
				select {
				case <-c:
				case <-ctx.Done():
				}
			}
		}
		wg.Go(func() {
			errs[i] = receive(ctx, client, &subscribed, firstAck, func(e *hookstreamv1.ReceivedEvent) {
				mu.Lock()
				defer mu.Unlock()
				seq := e.GetEvent().GetSequence()
				delivered[seq] = append(delivered[seq], i)
				perMember[i]++
				if e.GetDeliveryAttempt() != 1 {
					t.Errorf("sequence %d: delivery attempt %d, want 1", seq, e.GetDeliveryAttempt())
				}
				if len(delivered) == want {
					cancel()
				}
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("member %d: %v", i, err)
		}
	}
	if len(delivered) != want {
		t.Errorf("the group got %d events within %v, want %d", len(delivered), clusterWait, want)
	}
	for seq, members := range delivered {
		if len(members) != 1 {
			t.Errorf("sequence %d delivered to members %v, want exactly one", seq, members)
		}
	}
	for i, n := range perMember {
		if n == 0 {
			t.Errorf("member %d got no event of the group's %d", i, want)
		}
	}
	t.Logf("one group through %d daemons: %v events delivered per member, %d in all", len(servers), perMember, len(delivered))
}

// receive subscribes to the group "cluster" from the start and acks each event after got, until
// ctx is done.
// The member is done subscribing, well or not, when it calls subscribed.Done; it calls firstAck
// before its first ack.
func receive(ctx context.Context, client hookstreamv1.EventServiceClient, subscribed *sync.WaitGroup, firstAck func(), got func(*hookstreamv1.ReceivedEvent)) error {
	sub, err := client.Subscribe(ctx)
	if err == nil {
		err = sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{
			Group: "cluster", Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL},
			AckDeadline: durationpb.New(30 * time.Second), MaxInFlight: 20,
		}}})
	}
	var first *hookstreamv1.SubscribeResponse
	if err == nil {
		first, err = sub.Recv()
	}
	subscribed.Done()
	if err != nil || first.GetSubscribed() == nil {
		return fmt.Errorf("subscribe: got %v, %v, want subscribed", first, err)
	}
	subscribed.Wait()
	for err == nil {
		var resp *hookstreamv1.SubscribeResponse
		if resp, err = sub.Recv(); err != nil {
			break
		}
		var acks []string
		for _, e := range resp.GetEvents().GetEvents() {
			got(e)
			acks = append(acks, e.GetAckId())
		}
		if len(acks) > 0 && firstAck != nil {
			firstAck()
			firstAck = nil
		}
		if len(acks) > 0 {
			err = sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Settle_{Settle: &hookstreamv1.SubscribeRequest_Settle{AckIds: acks}}})
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}
