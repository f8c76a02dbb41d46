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

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"github.com/prometheus/client_golang/prometheus"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/gen/openapi"
	"github.com/hookstream/hookstream/server/auth"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/quarantine"
	"github.com/hookstream/hookstream/server/stream"
	"github.com/hookstream/hookstream/server/tlsconf"
	"github.com/hookstream/hookstream/server/tracing"
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
//
// It has two doors. The public listener (http.addr) serves the webhook routes, /healthz and
// /readyz, nothing else: providers reach it. The internal API listens on grpc.addr (gRPC: the
// services, health, reflection) and api.addr (the HTTP mapping of EventService and
// QuarantineService, /metrics, and the OpenAPI document at /openapi.json), on loopback unless
// principals are configured; every internal call is authenticated and authorized by one
// authorizer (package auth), except GET /openapi.json, which holds no data and is open.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	events *eventlog.Log
	trace  *tracing.Tracing
	stream *stream.Service
	authz  *auth.Authorizer
	health *health.Server
	// serving is set once every server serves, draining once the shutdown began: with the
	// log's health they make readiness (notReady).
	serving  atomic.Bool
	draining atomic.Bool
	reg      *prometheus.Registry // served at /metrics on the internal HTTP listener

	grpc     *grpc.Server // the internal gRPC listener's
	inproc   *grpc.Server // the API door's way to the services, in the process only
	http     *http.Server // public
	api      *http.Server // internal HTTP
	grpcLis  net.Listener
	httpLis  net.Listener
	apiLis   net.Listener
	inprocLn *bufconn.Listener
	conn     *grpc.ClientConn // to inproc, for the API door
	front    *gateway.Handler
	// The HTTP/1 connections of http and api, which the drain closes (drain.go).
	httpConns, apiConns *conns
}

// New opens the event log, binds the listeners named in cfg and builds the servers. It returns
// an error if the log cannot be opened, the authentication or TLS settings cannot be used (those
// errors wrap config.ErrInvalid) or an address cannot be bound. The caller must call Run, which
// closes the listeners and the log when it returns.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	authn, err := auth.FromConfig(cfg.Auth, config.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	tr, err := startTracing(ctx, log)
	if err != nil {
		return nil, err
	}
	reg := newRegistry()
	lo := eventlog.OptionsFrom(cfg)
	lo.Logger, lo.Metrics = log, reg
	events, err := eventlog.Open(ctx, lo)
	if err != nil {
		tr.Shutdown(ctx)
		return nil, fmt.Errorf("open event log: %w", err)
	}
	s := &Server{cfg: cfg, log: log, events: events, trace: tr, health: health.NewServer(), reg: reg,
		authz: auth.NewAuthorizer(authn, auth.AuthorizerOptions{OpenReflection: cfg.GRPC.OpenReflection, Logger: log})}
	if err := s.build(ctx); err != nil {
		s.closeEarly()
		return nil, err
	}
	return s, nil
}

// build makes the services, binds the listeners and builds the servers.
func (s *Server) build(ctx context.Context) error {
	listeners := make(map[string]ingest.Listener, len(s.cfg.Listeners))
	for id, l := range s.cfg.Listeners {
		listeners[strings.ToLower(id)] = ingest.Listener{DefaultType: l.DefaultType}
	}
	metrics, err := ingest.NewMetrics(s.reg)
	if err != nil {
		return err
	}
	webhooks, err := ingest.New(ingest.Options{Log: s.events, Listeners: listeners, BodyLimit: s.cfg.HTTP.BodyLimit, Logger: s.log, TracerProvider: s.trace.Provider(), Metrics: metrics})
	if err != nil {
		return err
	}
	so := stream.OptionsFrom(s.cfg)
	so.Log, so.Logger, so.Metrics = s.events, s.log, s.reg
	if s.stream, err = stream.New(so); err != nil {
		return err
	}
	quarantineService, err := quarantine.New(s.events, webhooks, s.cfg.GRPC.MaxResponseBytes, s.log)
	if err != nil {
		return err
	}
	if err := s.listen(); err != nil {
		return err
	}
	if err := s.buildGRPC(webhooks, quarantineService); err != nil {
		return err
	}
	if err := s.buildPublic(ctx, webhooks, metrics); err != nil {
		return err
	}
	return s.buildAPI(ctx)
}

func (s *Server) listen() error {
	var err error
	if s.grpcLis, err = net.Listen("tcp", s.cfg.GRPC.Addr); err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	if s.httpLis, err = listenHTTP(s.cfg.HTTP.Addr); err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	if s.apiLis, err = listenHTTP(s.cfg.API.Addr); err != nil {
		return fmt.Errorf("listen api: %w", err)
	}
	s.inprocLn = bufconn.Listen(1 << 20)
	return nil
}

// buildGRPC builds the internal gRPC server, and the in-process one the API door calls: both
// authorize every call with the same interceptors.
func (s *Server) buildGRPC(webhooks *ingest.Service, quarantineService *quarantine.Service) error {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             minClientPingInterval,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    serverPingInterval,
			Timeout: serverPingTimeout,
		}),
		grpc.ChainUnaryInterceptor(s.authz.Unary()),
		grpc.ChainStreamInterceptor(s.authz.Stream()),
	}
	tlsCfg, err := tlsconf.Server(internalTLS(s.cfg.GRPC.TLS, s.cfg.Auth), s.log)
	if err != nil {
		return fmt.Errorf("%w: grpc.tls: %w", config.ErrInvalid, err)
	}
	s.inproc = grpc.NewServer(opts...)
	hookstreamv1.RegisterEventServiceServer(s.inproc, s.stream)
	hookstreamv1.RegisterQuarantineServiceServer(s.inproc, quarantineService)
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	// Producers' and consumers' incoming trace contexts ("traceparent" metadata) become the
	// parents of their calls' spans, which the core's spans are children of.
	opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(s.trace.Provider()),
		otelgrpc.WithPropagators(tracing.Propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus's
	)))
	s.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	hookstreamv1.RegisterWebhookServiceServer(s.grpc, webhooks)
	hookstreamv1.RegisterEventServiceServer(s.grpc, s.stream)
	hookstreamv1.RegisterQuarantineServiceServer(s.grpc, quarantineService)
	return nil
}

// buildPublic builds the public HTTP server: the front door, /healthz and /readyz.
func (s *Server) buildPublic(ctx context.Context, webhooks *ingest.Service, metrics *ingest.Metrics) error {
	moveapi, movement, mvmnt, gwListeners, err := verifiers(s.cfg, s.log)
	if err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	s.front, err = gateway.New(ctx, gateway.Options{
		Webhooks:    webhooks,
		MoveAPI:     moveapi,
		Movement:    movement,
		MVMNT:       mvmnt,
		Listeners:   gwListeners,
		BodyLimit:   s.cfg.HTTP.BodyLimit,
		MaxInFlight: s.cfg.HTTP.MaxInFlight,
		Logger:      s.log,
		Metrics:     metrics,

		TracerProvider:        s.trace.Provider(),
		MaxUnverifiedInFlight: s.cfg.HTTP.MaxUnverifiedInFlight,
		BodyReadTimeout:       s.cfg.HTTP.BodyReadTimeout,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", s.front)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.httpConns = newConns()
	s.http, err = s.httpServer(mux, s.httpConns, tlsconf.Files{CertFile: s.cfg.HTTP.TLS.CertFile, KeyFile: s.cfg.HTTP.TLS.KeyFile})
	if err != nil {
		return fmt.Errorf("%w: http.tls: %w", config.ErrInvalid, err)
	}
	return nil
}

// buildAPI builds the internal HTTP server: EventService's and QuarantineService's HTTP routes,
// through a client connection to the in-process gRPC server (Tail is a stream). Its answers are
// bounded (grpc.max_response_bytes, or one event of at most the log's largest): the connection
// takes either.
func (s *Server) buildAPI(ctx context.Context) error {
	var err error
	s.conn, err = grpc.NewClient("passthrough:///hookstream-inproc",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.inprocLn.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(max(s.cfg.GRPC.MaxResponseBytes, s.events.MaxEventBytes())+64<<10)))
	if err != nil {
		return fmt.Errorf("grpc client: %w", err)
	}
	api, err := gateway.NewAPI(ctx, gateway.APIOptions{Conn: s.conn, Authenticate: s.authz.HTTP, Forward: s.authz.Forward, Logger: s.log,
		StreamWriteTimeout: writeTimeout, Metrics: metricsHandler(s.reg, s.log), OpenAPI: openapi.JSON})
	if err != nil {
		return err
	}
	s.apiConns = newConns()
	s.api, err = s.httpServer(api, s.apiConns, internalTLS(s.cfg.API.TLS, s.cfg.Auth))
	if err != nil {
		return fmt.Errorf("%w: api.tls: %w", config.ErrInvalid, err)
	}
	return nil
}

// internalTLS returns the TLS files of an internal listener: the client CA verifies client
// certificates on those listeners that have TLS (config checks that one does).
func internalTLS(t config.TLS, a config.Auth) tlsconf.Files {
	f := tlsconf.Files{CertFile: t.CertFile, KeyFile: t.KeyFile}
	if f.CertFile != "" {
		f.ClientCAFile = a.ClientCAFile
	}
	return f
}

// httpServer is an HTTP server of h with hookstream's timeouts, and TLS when f has a certificate.
// c tracks its connections and h's answers close them while the server drains.
func (s *Server) httpServer(h http.Handler, c *conns, f tlsconf.Files) (*http.Server, error) {
	tlsCfg, err := tlsconf.Server(f, s.log)
	if err != nil {
		return nil, err
	}
	return &http.Server{
		Handler:           s.closeWhileDraining(h),
		ConnState:         c.track,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}, nil
}

// closeEarly releases what New acquired when New fails half way.
func (s *Server) closeEarly() {
	if s.conn != nil {
		s.conn.Close()
	}
	for _, l := range []net.Listener{s.grpcLis, s.httpLis, s.apiLis} {
		if l != nil {
			l.Close()
		}
	}
	s.events.Close()
	s.trace.Shutdown(context.Background())
}

// Unauthorized returns how many webhook requests were answered 401.
func (s *Server) Unauthorized() int64 { return s.front.Unauthorized() }

// GRPCAddr is the address the internal gRPC server listens on.
func (s *Server) GRPCAddr() net.Addr { return s.grpcLis.Addr() }

// HTTPAddr is the address the public HTTP server (webhooks) listens on.
func (s *Server) HTTPAddr() net.Addr { return s.httpLis.Addr() }

// APIAddr is the address the internal HTTP server (the API's HTTP mapping) listens on.
func (s *Server) APIAddr() net.Addr { return s.apiLis.Addr() }

// Run serves until ctx is done or a server fails, then drains (see shutdown): readiness and gRPC
// health turn NOT_SERVING first, for shutdown_lame_duck, then in-flight requests and streams get
// up to shutdown_timeout to finish, and are cut after it. Meanwhile readiness follows the event
// log's health. It returns nil after a shutdown that put nothing acknowledged at risk, even when
// slow clients were cut, and an error when a server failed or the log did not close cleanly.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	serveGRPC := func(name string, srv *grpc.Server, l net.Listener) {
		g.Go(func() error {
			if err := srv.Serve(l); err != nil {
				return fmt.Errorf("serve %s: %w", name, err)
			}
			return nil
		})
	}
	serveHTTP := func(name string, srv *http.Server, l net.Listener) {
		g.Go(func() error {
			var err error
			if srv.TLSConfig != nil {
				err = srv.ServeTLS(l, "", "")
			} else {
				err = srv.Serve(l)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve %s: %w", name, err)
			}
			return nil
		})
	}
	serveGRPC("grpc", s.grpc, s.grpcLis)
	serveGRPC("in-process grpc", s.inproc, s.inprocLn)
	serveHTTP("http", s.http, s.httpLis)
	serveHTTP("api", s.api, s.apiLis)
	s.serving.Store(true)
	g.Go(func() error { s.watchHealth(gctx); return nil })
	s.log.Info("hookstream serving", "http", s.HTTPAddr().String(), "grpc", s.GRPCAddr().String(), "api", s.APIAddr().String(), "internal_auth", !s.authz.Open())
	g.Go(func() error {
		<-gctx.Done()
		return s.shutdown()
	})
	err := g.Wait()
	// Only now: every request and stream has ended or was cut, so nothing acknowledged is in
	// flight.
	s.conn.Close()
	if cerr := s.events.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close event log: %w", cerr))
	}
	s.flushTraces()
	return err
}
