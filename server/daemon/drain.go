package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/gateway"
)

const (
	// healthPoll is how often gRPC health's serving status is brought in line with readiness.
	// Readiness itself (/readyz) is computed on each request: the log's health is an atomic load.
	healthPoll = 250 * time.Millisecond
	// idleQuiet is how long a kept-alive HTTP/1 connection must have been idle before the drain
	// closes it. HTTP/1 has no way to tell a client not to send on an idle connection: closing
	// one as a request arrives resets that request without an answer. A client sending
	// continuously answers to the drain's "Connection: close" first; one idle this long is
	// taken not to be about to send.
	idleQuiet = time.Second
	// drainPoll is how often the drain looks for idle connections to close.
	drainPoll = 10 * time.Millisecond
)

var (
	errStarting = errors.New("starting")
	errDraining = errors.New("draining")
)

// notReady returns why hookstream should get no traffic now, or nil: it is starting, it is
// draining, or the event log cannot take appends (eventlog.Log.Healthy, which probes a failing
// log until it recovers).
func (s *Server) notReady() error {
	switch {
	case s.draining.Load():
		return errDraining
	case !s.serving.Load():
		return errStarting
	}
	return s.events.Healthy()
}

// readyz answers GET /readyz: 200 when ready, else 503 with Retry-After and the reason's name
// (never the log's error text: the public door serves it).
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	err := s.notReady()
	if err == nil {
		w.Write([]byte("ready\n"))
		return
	}
	reason := err.Error()
	if errors.Is(err, eventlog.ErrUnavailable) {
		reason = "event log unavailable"
	}
	w.Header().Set("Retry-After", gateway.RetryAfter)
	http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
}

// watchHealth keeps gRPC health's serving status in line with notReady until ctx ends. The
// drain turns it NOT_SERVING for good (health.Server.Shutdown).
func (s *Server) watchHealth(ctx context.Context) {
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		st := healthpb.HealthCheckResponse_SERVING
		if s.notReady() != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if st != last {
			s.health.SetServingStatus("", st)
			last = st
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// closeWhileDraining makes every HTTP/1 answer h gives while the server drains close its
// connection ("Connection: close"), so that its client sends nothing more on it.
func (s *Server) closeWhileDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// conns tracks the HTTP/1 connections of a server, as its ConnState hook: whether each is idle
// between requests, and since when. HTTP/2 connections are left to Shutdown, which tells their
// clients with GOAWAY. It is safe for concurrent use.
type conns struct {
	mu sync.Mutex
	m  map[net.Conn]connState
}

type connState struct {
	state http.ConnState
	since time.Time
}

func newConns() *conns { return &conns{m: map[net.Conn]connState{}} }

func (c *conns) track(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew, http.StateActive, http.StateIdle:
		if tc, ok := conn.(*tls.Conn); ok && st != http.StateNew && tc.ConnectionState().NegotiatedProtocol == "h2" {
			delete(c.m, conn)
			return
		}
		c.m[conn] = connState{state: st, since: time.Now()}
	default:
		delete(c.m, conn)
	}
}

// closeIdle closes the connections that are idle, each once it has been for idleQuiet, and waits
// for the new ones to send their request, until no connection may carry a request not read yet,
// or ctx ends: http.Server.Shutdown drops, unanswered, a request it reads after it began. The
// listener is closed: no connection is new after it. draining is when every answer began to
// close its connection: a connection active since then closes after its answer; one active
// since before may still become idle, and is waited for during idleQuiet (longer, it is a slow
// request or a stream, which Shutdown waits for).
func (c *conns) closeIdle(ctx context.Context, draining time.Time) {
	for {
		pending := false
		early := time.Since(draining) < idleQuiet
		c.mu.Lock()
		for conn, st := range c.m {
			switch {
			case st.state == http.StateIdle && time.Since(st.since) >= idleQuiet:
				conn.Close()
				delete(c.m, conn)
			case st.state != http.StateActive, early && st.since.Before(draining):
				pending = true
			}
		}
		c.mu.Unlock()
		if !pending {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(drainPoll):
		}
	}
}

// shutdown drains and stops the servers, in order: readiness and gRPC health turn NOT_SERVING
// and HTTP/1 answers close their connections; after shutdown_lame_duck (a load balancer has
// stopped sending by then) streams get "draining" and end; idle connections are closed once
// quiet; then the servers stop, in-flight requests (and so their appends) finishing within
// shutdown_timeout. Whatever is still open then — a client that stopped reading a tail, a body
// that trickles — is cut: its request was never answered 2xx, so nothing acknowledged is at
// risk and shutdown returns nil.
func (s *Server) shutdown() error {
	s.draining.Store(true)
	s.health.Shutdown()
	draining := time.Now()
	s.log.Info("hookstream draining", "lame_duck", s.cfg.ShutdownLameDuck, "timeout", s.cfg.ShutdownTimeout)
	time.Sleep(s.cfg.ShutdownLameDuck)
	s.stream.Drain() // subscribers get "draining" and reconnect elsewhere at once
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var cut [4]bool
	var wg sync.WaitGroup
	wg.Go(func() { cut[0] = stopHTTP(ctx, s.http, s.httpLis, s.httpConns, draining) })
	wg.Go(func() { cut[1] = stopHTTP(ctx, s.api, s.apiLis, s.apiConns, draining) })
	wg.Go(func() { cut[2] = stopGRPC(ctx, s.grpc) })
	wg.Wait()
	// The API door calls the in-process server: it stops once the API door has.
	cut[3] = stopGRPC(ctx, s.inproc)
	if cut != [4]bool{} {
		s.log.Warn("hookstream shutdown timeout reached: open requests and streams were cut",
			"timeout", s.cfg.ShutdownTimeout, "http", cut[0], "api", cut[1], "grpc", cut[2], "in_process_grpc", cut[3])
	}
	return nil
}

// stopHTTP stops srv: its listener l closed first, so that no connection comes that Shutdown
// would find before its request is read; then its idle connections are closed and its new ones
// waited for (see conns.closeIdle); then Shutdown; then, at ctx's end, Close, which cuts what
// is still open. It reports whether it cut anything.
func stopHTTP(ctx context.Context, srv *http.Server, l net.Listener, c *conns, draining time.Time) bool {
	l.Close()
	select {
	case <-l.(*drainListener).done: // every connection accepted is tracked
	case <-ctx.Done():
	}
	c.closeIdle(ctx, draining)
	// No connection is idle now, and none can become idle: this closes nothing (it would close
	// idle connections at once).
	srv.SetKeepAlivesEnabled(false)
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
		return true
	}
	return false
}

// stopGRPC stops srv gracefully, or at ctx's end at once (streams whose client stopped reading
// are cut). It reports whether it cut anything.
func stopGRPC(ctx context.Context, srv *grpc.Server) bool {
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
		return false
	case <-ctx.Done():
		srv.Stop()
		<-stopped
		return true
	}
}

// listenHTTP listens on addr for an HTTP server, with a listener the drain closes before the
// server's Shutdown (see stopHTTP): closing it again does nothing, and Accept then returns
// http.ErrServerClosed, as Serve does after Shutdown.
func listenHTTP(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &drainListener{Listener: l, closed: make(chan struct{}), done: make(chan struct{})}, nil
}

type drainListener struct {
	net.Listener
	once, doneOnce sync.Once
	closed         chan struct{}
	// done is closed when Accept failed after Close. Serve tracks each connection (ConnState
	// StateNew) before it calls Accept again: every connection accepted is tracked then.
	done chan struct{}
}

func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		select {
		case <-l.closed:
			l.doneOnce.Do(func() { close(l.done) })
			return nil, http.ErrServerClosed
		default:
		}
	}
	return c, err
}

func (l *drainListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.Listener.Close()
	})
	return nil
}
