// Package daemon assembles a hookstream process: the gRPC server (services, health, reflection)
// and the HTTP server (webhook routes, gateway routes, /healthz, /readyz) on their listeners, and
// runs them until their context ends, then stops them gracefully.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/quarantine"
	"github.com/hookstream/hookstream/server/stream"
)

// HTTP server timeouts. Providers send small bodies and expect an answer within seconds (MVMNT:
// 5 s, Svix: 15 s). The long-lived Tail stream lifts its own write deadline (package gateway).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Keepalive policy of the gRPC server. Clients must not ping more often than
// minClientPingInterval (the documented client setting is 30 s); the server pings idle
// connections itself so dead peers are noticed behind proxies.
const (
	minClientPingInterval = 20 * time.Second
	serverPingInterval    = 30 * time.Second
	serverPingTimeout     = 10 * time.Second
)

// Server is a hookstream process bound to its listeners. Create it with New, run it with Run.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	events *eventlog.Log
	stream *stream.Service
	grpc   *grpc.Server
	http   *http.Server
	health *health.Server
	ready  atomic.Bool

	grpcLis net.Listener
	httpLis net.Listener
	conn    *grpc.ClientConn // to our own gRPC server, for EventService's HTTP routes
	front   *gateway.Handler
}

// New opens the event log, binds the listeners named in cfg and builds the servers. It returns
// an error if the log cannot be opened or an address cannot be bound. The caller must call Run,
// which closes the listeners and the log when it returns.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	lo := eventlog.OptionsFrom(cfg)
	lo.Logger = log
	events, err := eventlog.Open(ctx, lo)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	s := &Server{cfg: cfg, log: log, events: events, health: health.NewServer()}
	if err := s.build(ctx); err != nil {
		s.closeEarly()
		return nil, err
	}
	return s, nil
}

// build makes the services, binds the listeners and builds both servers.
func (s *Server) build(ctx context.Context) error {
	listeners := make(map[string]ingest.Listener, len(s.cfg.Listeners))
	for id, l := range s.cfg.Listeners {
		listeners[strings.ToLower(id)] = ingest.Listener{DefaultType: l.DefaultType}
	}
	webhooks, err := ingest.New(ingest.Options{Log: s.events, Listeners: listeners, BodyLimit: s.cfg.HTTP.BodyLimit, Logger: s.log})
	if err != nil {
		return err
	}
	if s.stream, err = stream.New(stream.Options{Log: s.events, MaxResponseBytes: s.cfg.GRPC.MaxResponseBytes, Logger: s.log}); err != nil {
		return err
	}
	quarantineService, err := quarantine.New(s.events, webhooks, s.cfg.GRPC.MaxResponseBytes, s.log)
	if err != nil {
		return err
	}
	if s.grpcLis, err = net.Listen("tcp", s.cfg.GRPC.Addr); err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	if s.httpLis, err = net.Listen("tcp", s.cfg.HTTP.Addr); err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	s.grpc = grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             minClientPingInterval,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    serverPingInterval,
			Timeout: serverPingTimeout,
		}),
	)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	hookstreamv1.RegisterWebhookServiceServer(s.grpc, webhooks)
	hookstreamv1.RegisterEventServiceServer(s.grpc, s.stream)
	hookstreamv1.RegisterQuarantineServiceServer(s.grpc, quarantineService)
	return s.buildHTTP(ctx, webhooks)
}

// buildHTTP builds the HTTP server: the front door, /healthz and /readyz.
func (s *Server) buildHTTP(ctx context.Context, webhooks *ingest.Service) error {
	// EventService's HTTP routes go through a client connection to the gRPC server (Tail is a
	// stream); the webhook routes call the ingestion core in-process. Its answers are bounded
	// (grpc.max_response_bytes, or one event of at most the log's largest): room for either.
	var err error
	s.conn, err = grpc.NewClient(s.grpcLis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(max(s.cfg.GRPC.MaxResponseBytes, s.events.MaxEventBytes())+64<<10)))
	if err != nil {
		return fmt.Errorf("grpc client: %w", err)
	}
	moveapi, movement, mvmnt, gwListeners, err := verifiers(s.cfg, s.log)
	if err != nil {
		return err
	}
	s.front, err = gateway.New(ctx, gateway.Options{
		Webhooks:    webhooks,
		Events:      s.conn,
		MoveAPI:     moveapi,
		Movement:    movement,
		MVMNT:       mvmnt,
		Listeners:   gwListeners,
		BodyLimit:   s.cfg.HTTP.BodyLimit,
		MaxInFlight: s.cfg.HTTP.MaxInFlight,
		Logger:      s.log,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.front)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// closeEarly releases what New acquired when New fails half way.
func (s *Server) closeEarly() {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.grpcLis != nil {
		s.grpcLis.Close()
	}
	if s.httpLis != nil {
		s.httpLis.Close()
	}
	s.events.Close()
}

// Unauthorized returns how many webhook requests were answered 401.
func (s *Server) Unauthorized() int64 { return s.front.Unauthorized() }

// GRPCAddr is the address the gRPC server listens on.
func (s *Server) GRPCAddr() net.Addr { return s.grpcLis.Addr() }

// HTTPAddr is the address the HTTP server listens on.
func (s *Server) HTTPAddr() net.Addr { return s.httpLis.Addr() }

// Run serves until ctx is done or a server fails, then shuts both servers down gracefully:
// readiness and gRPC health turn NOT_SERVING first, then in-flight requests and streams get up to
// the configured shutdown timeout to finish. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.grpc.Serve(s.grpcLis); err != nil {
			return fmt.Errorf("serve grpc: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := s.http.Serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.ready.Store(true)
	s.log.Info("hookstream serving", "http", s.HTTPAddr().String(), "grpc", s.GRPCAddr().String())

	g.Go(func() error {
		<-gctx.Done()
		s.ready.Store(false)
		s.health.Shutdown()
		s.stream.Drain() // subscribers get "draining" and reconnect elsewhere at once
		s.log.Info("hookstream shutting down", "timeout", s.cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		err := s.http.Shutdown(sctx)
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-sctx.Done():
			s.grpc.Stop()
			<-stopped
		}
		if err != nil {
			return fmt.Errorf("shutdown http: %w", err)
		}
		return nil
	})
	err := g.Wait()
	// Only now: every request and stream has ended, so nothing acknowledged is in flight.
	s.conn.Close()
	s.events.Close()
	return err
}
