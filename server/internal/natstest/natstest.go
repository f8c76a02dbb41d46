// Package natstest runs real nats-servers with JetStream on loopback for the tests of hookstream's
// packages: a single server, or a cluster whose nodes a test can stop and restart.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyTimeout bounds every wait of this package: a server starting, a leader being elected.
const readyTimeout = 30 * time.Second

// MaxPayload is the max_payload of the servers started here: room for the largest event of the
// default body limit (eventlog.EventBudget), which hookstream checks at start.
const MaxPayload = 8 << 20

// Server starts a nats-server with JetStream on a free loopback port, its store in t.TempDir(),
// max_payload MaxPayload, and shuts it down when t ends (a test may shut it down earlier).
func Server(t testing.TB) *server.Server {
	t.Helper()
	return ServerWith(t, MaxPayload)
}

// ServerWith is Server with the given max_payload.
func ServerWith(t testing.TB, maxPayload int32) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// JetStream connects to the NATS server at url, for tests that look at its streams and
// consumers themselves; the connection is closed when t ends.
func JetStream(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Cluster is a JetStream cluster of nats-servers on loopback, each with its own store in a
// t.TempDir(). Node i keeps its ports and store across Stop and Start, so clients configured
// with URLs find it again. Its methods must be called from the test's goroutine.
type Cluster struct {
	t       testing.TB
	opts    []server.Options
	servers []*server.Server // nil while stopped
}

// StartCluster starts a cluster of n nodes, waits until it has elected a JetStream meta leader,
// and shuts it down when t ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := NewCluster(t, n)
	for i := range n {
		c.Start(i)
	}
	c.WaitMetaLeader()
	return c
}

// NewCluster is StartCluster without starting any node: the test starts them with Start (for a
// client that must wait for a cluster coming up).
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	// The ports are fixed before the first start: every node's routes name all the others, and a
	// restarted node must come back where its clients and peers look for it.
	ports := freePorts(t, 2*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	c := &Cluster{t: t, servers: make([]*server.Server, n)}
	for i := range n {
		c.opts = append(c.opts, server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			MaxPayload: MaxPayload,
			Cluster:    server.ClusterOpts{Name: "hookstream-test", Host: "127.0.0.1", Port: ports[n+i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		})
	}
	t.Cleanup(c.shutdown)
	return c
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close() // held until all are chosen, so none is chosen twice
		ports = append(ports, lis.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// URLs returns the client URLs of all nodes, comma-separated, as nats.Connect takes them.
func (c *Cluster) URLs() string {
	var urls []string
	for i := range c.opts {
		urls = append(urls, c.URL(i))
	}
	return strings.Join(urls, ",")
}

// URL returns the client URL of node i, running or not.
func (c *Cluster) URL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port)
}

// Server returns node i, or nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server { return c.servers[i] }

// Start starts node i (again) with its store as Stop left it, and waits until it takes client
// connections; it does not wait for the node to catch up with the others.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if c.servers[i] != nil {
		c.t.Fatalf("node %d is running", i)
	}
	o := c.opts[i] // NewServer fills in defaults: each start gets its own copy
	ns, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		c.t.Fatalf("node %d did not start", i)
	}
	c.servers[i] = ns
}

// Stop shuts node i down and waits until its files are closed.
func (c *Cluster) Stop(i int) {
	if ns := c.servers[i]; ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		c.servers[i] = nil
	}
}

func (c *Cluster) shutdown() {
	for i := range c.servers {
		c.Stop(i)
	}
}

// WaitMetaLeader waits until a running node is the JetStream meta leader and every running node
// is current with it.
func (c *Cluster) WaitMetaLeader() {
	c.t.Helper()
	c.waitFor("a JetStream meta leader", func() bool {
		leader := false
		for _, ns := range c.servers {
			if ns == nil {
				continue
			}
			if !ns.JetStreamIsCurrent() {
				return false
			}
			leader = leader || ns.JetStreamIsLeader()
		}
		return leader
	})
}

// WaitStream waits until stream (of the global account) has a leader and its replicas on every
// running node are current, and returns the index of the leader's node.
func (c *Cluster) WaitStream(stream string) int {
	c.t.Helper()
	leader := -1
	c.waitFor("a leader of stream "+stream, func() bool {
		leader = -1
		for i, ns := range c.servers {
			if ns == nil {
				continue
			}
			account := ns.GlobalAccount().Name
			if ns.JetStreamIsStreamLeader(account, stream) {
				leader = i
			} else if !ns.JetStreamIsStreamCurrent(account, stream) {
				return false
			}
		}
		return leader >= 0
	})
	return leader
}

func (c *Cluster) waitFor(what string, ok func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s after %v", what, readyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
