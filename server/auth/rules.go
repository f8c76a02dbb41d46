package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/logs"
)

// need is what a call must present.
type need struct {
	// open calls need nothing (health).
	open bool
	// perm is the permission the principal needs; empty with anyone, any principal.
	perm Permission
	// anyone: any authenticated principal (reflection).
	anyone bool
	// provider is the provider a produce call stores events of.
	provider hookstreamv1.Provider
}

// rules is the one table of what each internal call needs, by gRPC method; the HTTP mapping goes
// through the same methods. A method not in the table is refused: closed by default.
var rules = map[string]need{
	"/grpc.health.v1.Health/Check": {open: true},
	"/grpc.health.v1.Health/Watch": {open: true},
	"/grpc.health.v1.Health/List":  {open: true},

	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {anyone: true},
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {anyone: true},

	hookstreamv1.EventService_Subscribe_FullMethodName:   {perm: PermConsume},
	hookstreamv1.EventService_Tail_FullMethodName:        {perm: PermRead},
	hookstreamv1.EventService_GetEvent_FullMethodName:    {perm: PermRead},
	hookstreamv1.EventService_ListEvents_FullMethodName:  {perm: PermRead},
	hookstreamv1.EventService_ListGroups_FullMethodName:  {perm: PermAdmin},
	hookstreamv1.EventService_DeleteGroup_FullMethodName: {perm: PermAdmin},
	hookstreamv1.EventService_GetGroup_FullMethodName:    {perm: PermAdmin},
	hookstreamv1.EventService_ResetGroup_FullMethodName:  {perm: PermAdmin},
	hookstreamv1.EventService_PauseGroup_FullMethodName:  {perm: PermAdmin},
	hookstreamv1.EventService_ResumeGroup_FullMethodName: {perm: PermAdmin},

	hookstreamv1.QuarantineService_ListEntries_FullMethodName:  {perm: PermAdmin},
	hookstreamv1.QuarantineService_GetEntry_FullMethodName:     {perm: PermAdmin},
	hookstreamv1.QuarantineService_RedriveEntry_FullMethodName: {perm: PermAdmin},
	hookstreamv1.QuarantineService_DeleteEntry_FullMethodName:  {perm: PermAdmin},
	hookstreamv1.QuarantineService_PurgeEntries_FullMethodName: {perm: PermAdmin},

	hookstreamv1.WebhookService_ReceiveMoveApiWebhook_FullMethodName:  {perm: PermProduce, provider: hookstreamv1.Provider_PROVIDER_MOVEAPI},
	hookstreamv1.WebhookService_ReceiveMovementWebhook_FullMethodName: {perm: PermProduce, provider: hookstreamv1.Provider_PROVIDER_MOVEMENT},
	hookstreamv1.WebhookService_ReceiveMvmntDelivery_FullMethodName:   {perm: PermProduce, provider: hookstreamv1.Provider_PROVIDER_MVMNT},
	hookstreamv1.WebhookService_NotifyListener_FullMethodName:         {perm: PermProduce, provider: hookstreamv1.Provider_PROVIDER_LISTENER},
}

// Metadata keys by which the internal API's own HTTP gateway hands the gRPC server the principal
// it authenticated: trusted only with the gateway's key, a secret of the process.
const (
	gatewayKeyMD = "hookstream-gateway-key"
	principalMD  = "hookstream-principal"
)

// Authorizer authorizes every internal call, over gRPC (Unary, Stream) and over the HTTP mapping
// (HTTP, Forward), against rules. With no principal configured it lets every call through: an
// internal API that may only listen on loopback (the daemon refuses to start otherwise). It is
// safe for concurrent use.
type Authorizer struct {
	authn          *Authenticator
	gatewayKey     string
	openReflection bool
	logger         *slog.Logger
	// refusals writes the lines of refused calls at a rate limit: a flood of unauthenticated
	// calls must not fill the disk.
	refusals logs.Sometimes
}

// AuthorizerOptions configures NewAuthorizer.
type AuthorizerOptions struct {
	// OpenReflection serves gRPC server reflection to unauthenticated callers too (by default it
	// is for authenticated principals).
	OpenReflection bool
	// Logger receives refusals (never credentials), one line a second at most. Nil: discard.
	Logger *slog.Logger
}

// NewAuthorizer returns the authorizer of authn's principals.
func NewAuthorizer(authn *Authenticator, o AuthorizerOptions) *Authorizer {
	var key [32]byte
	rand.Read(key[:])
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{authn: authn, gatewayKey: hex.EncodeToString(key[:]), openReflection: o.OpenReflection, logger: o.Logger}
}

// Open reports whether calls are let through without authentication (no principal configured).
func (z *Authorizer) Open() bool { return z.authn.Empty() }

// authorize checks a call of method made with ctx and returns ctx with the caller's principal.
// Errors are gRPC statuses: UNAUTHENTICATED or PERMISSION_DENIED, with a public message.
func (z *Authorizer) authorize(ctx context.Context, method string) (context.Context, *principal, error) {
	n, ok := rules[method]
	switch {
	case !ok:
		z.refusals.Warn(z.logger, "internal call refused: method not in the rules", "method", method)
		return nil, nil, status.Error(codes.PermissionDenied, "this method is not available")
	case n.open, z.Open(), n.anyone && z.openReflection:
		return ctx, nil, nil
	}
	p, err := z.authenticate(ctx)
	if err != nil {
		z.refusals.Warn(z.logger, "internal call refused: not authenticated", "method", method, "reason", err.Error())
		return nil, nil, status.Error(codes.Unauthenticated, "valid credentials are required")
	}
	if err := n.allows(p); err != nil {
		z.refusals.Warn(z.logger, "internal call refused: permission denied", "method", method, "principal", p.Name, "reason", err.Error())
		return nil, nil, status.Error(codes.PermissionDenied, err.Error())
	}
	return NewContext(ctx, p.Principal), p, nil
}

func (n need) allows(p *principal) error {
	switch {
	case n.anyone:
		return nil
	case !p.perms[n.perm]:
		return fmt.Errorf("%w: principal %q lacks the %s permission", ErrPermissionDenied, p.Name, n.perm)
	case n.perm == PermProduce && !p.mayProvider(n.provider):
		return fmt.Errorf("%w: principal %q may not produce %s events", ErrPermissionDenied, p.Name, providerName(n.provider))
	}
	return nil
}

// authenticate finds the principal of a gRPC call: forwarded by the process's own gateway, a
// verified client certificate, or a bearer token.
func (z *Authorizer) authenticate(ctx context.Context) (*principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if key := first(md, gatewayKeyMD); key != "" {
		if subtle.ConstantTimeCompare([]byte(key), []byte(z.gatewayKey)) != 1 {
			return nil, fmt.Errorf("%w: wrong gateway key", ErrUnauthenticated)
		}
		if p := z.authn.byPrincipalName(first(md, principalMD)); p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("%w: the gateway forwarded no principal", ErrUnauthenticated)
	}
	return z.authn.Authenticate(Credentials{Authorization: first(md, "authorization"), Certificates: peerCertificates(ctx)})
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// peerCertificates returns the leaf of each verified chain of a TLS peer.
func peerCertificates(ctx context.Context) []*x509.Certificate {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	var out []*x509.Certificate
	for _, chain := range info.State.VerifiedChains {
		if len(chain) > 0 {
			out = append(out, chain[0])
		}
	}
	return out
}

// Unary is the interceptor of unary calls.
func (z *Authorizer) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, _, err := z.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream is the interceptor of streaming calls. A Subscribe stream is also held to the
// principal's groups and providers when it opens.
func (z *Authorizer) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, p, err := z.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &authorizedStream{ServerStream: ss, ctx: ctx, p: p, z: z})
	}
}

// authorizedStream is a stream with its principal, which checks a Subscribe's open request.
type authorizedStream struct {
	grpc.ServerStream
	ctx    context.Context
	p      *principal // nil on an open API
	z      *Authorizer
	opened bool
}

func (s *authorizedStream) Context() context.Context { return s.ctx }

func (s *authorizedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	req, ok := m.(*hookstreamv1.SubscribeRequest)
	if !ok || s.opened || s.p == nil {
		return nil
	}
	s.opened = true
	if open := req.GetOpen(); open != nil {
		if err := s.p.mayConsume(open); err != nil {
			s.z.refusals.Warn(s.z.logger, "subscription refused: permission denied", "principal", s.p.Name, "reason", err.Error())
			return status.Error(codes.PermissionDenied, err.Error())
		}
	}
	return nil
}

// mayConsume checks a Subscribe's group and providers against the principal's. An empty filter
// asks for every provider.
func (p *principal) mayConsume(open *hookstreamv1.SubscribeRequest_Open) error {
	if g := open.GetGroup(); g != "" && !p.mayGroup(g) {
		return fmt.Errorf("%w: principal %q may not consume group %q", ErrPermissionDenied, p.Name, g)
	}
	providers := open.GetFilter().GetProviders()
	if len(providers) == 0 && p.providers != nil {
		return fmt.Errorf("%w: principal %q may consume only some providers: name them in the filter", ErrPermissionDenied, p.Name)
	}
	for _, pr := range providers {
		if !p.mayProvider(pr) {
			return fmt.Errorf("%w: principal %q may not consume %s events", ErrPermissionDenied, p.Name, providerName(pr))
		}
	}
	return nil
}

func providerName(p hookstreamv1.Provider) string { return p.String() }

// HTTP authenticates the requests of the internal API's HTTP mapping: a bearer token, or a
// verified client certificate. Unauthenticated requests are answered 401; authorization is the
// gRPC server's, through Forward.
func (z *Authorizer) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if z.Open() {
			next.ServeHTTP(w, r)
			return
		}
		var certs []*x509.Certificate
		if r.TLS != nil {
			for _, chain := range r.TLS.VerifiedChains {
				if len(chain) > 0 {
					certs = append(certs, chain[0])
				}
			}
		}
		p, err := z.authn.Authenticate(Credentials{Authorization: r.Header.Get("Authorization"), Certificates: certs})
		if err != nil {
			z.refusals.Warn(z.logger, "internal request refused: not authenticated", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error())
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"code":16,"message":"valid credentials are required"}`))
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p.Principal)))
	})
}

// Forward returns the metadata with which the internal HTTP gateway hands the gRPC server the
// principal HTTP authenticated (grpc-gateway's runtime.WithMetadata).
func (z *Authorizer) Forward(ctx context.Context, _ *http.Request) metadata.MD {
	p, ok := FromContext(ctx)
	if !ok {
		return nil
	}
	return metadata.Pairs(gatewayKeyMD, z.gatewayKey, principalMD, p.Name)
}
