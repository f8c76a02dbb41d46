package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/verify"
)

// admitted is a webhook request the mux matched to a route, before its body is read.
type admitted struct {
	route    webhookRoute
	verifier Verifier
	listener *Listener // the listener route's listener
	// listenerID is the listener's canonical (lower-case) id.
	listenerID string
	// source is the route's path with the listener's canonical id.
	source string
}

// listenerFormat reports whether errors are answered in the listener contract's format.
func (a admitted) listenerFormat() bool {
	return a.route.provider == hookstreamv1.Provider_PROVIDER_LISTENER
}

// admit is the webhook mux's middleware: the front door's steps between the matched route and
// the core, in order. Each step that refuses the request answers it. Credentials in the headers
// are checked before a place is taken or the body read, so a client without them costs nothing
// but its headers; a request whose headers prove nothing yet (a body signature) takes a place
// among MaxUnverifiedInFlight while its body is read, and one among MaxInFlight only once its
// signature holds, so that slow unverified bodies never hold the places of authentic deliveries.
func (h *Handler) admit(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		a, ok := h.matched(r, params)
		if !ok {
			// An unknown (or malformed) listener id: 404 with an empty body, as the listener
			// contract says, so nothing tells a prober which ids exist.
			a.route.metrics.Refused(http.StatusNotFound)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		ctx, span, w := h.traced(w, r, a)
		defer endSpan(span, w)
		if !jsonContent(r.Header.Get("Content-Type")) {
			h.refuse(w, r, a, http.StatusUnsupportedMediaType, codes.InvalidArgument, "unsupported_media_type", "the body must be JSON")
			return
		}
		_, verifying := h.tracer.Start(ctx, "verify")
		defer endVerify(verifying)
		proven, ok := h.credentials(w, r, a)
		if !ok {
			return
		}
		p := h.inFlight
		if !proven {
			p = h.unverified
		}
		if !h.take(w, r, a, p) {
			return
		}
		defer func() { p.release() }()
		body, ok := h.readBody(w, r, a)
		if !ok || !h.authentic(w, r, a, body) {
			return
		}
		if !proven {
			// Authentic now: it moves to the places of authentic deliveries.
			if !h.take(w, r, a, h.inFlight) {
				return
			}
			h.unverified.release()
			p = h.inFlight
		}
		verifying.End()
		next(w, h.verified(ctx, r, a, body), params)
	}
}

// matched returns the route the mux matched r to, with the listener the path names.
func (h *Handler) matched(r *http.Request, params map[string]string) (admitted, bool) {
	pattern, _ := runtime.HTTPPattern(r.Context())
	rt, ok := h.routes[template(pattern.String())]
	if !ok {
		return admitted{}, false // not a webhook route: the mux matched only those
	}
	a := admitted{route: rt, source: rt.template}
	switch rt.provider {
	case hookstreamv1.Provider_PROVIDER_MOVEAPI:
		a.verifier = h.o.MoveAPI
	case hookstreamv1.Provider_PROVIDER_MOVEMENT:
		a.verifier = h.o.Movement
	case hookstreamv1.Provider_PROVIDER_MVMNT:
		a.verifier = h.o.MVMNT
	case hookstreamv1.Provider_PROVIDER_LISTENER:
		id := params[listenerParam]
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			return admitted{route: rt}, false
		}
		a.listenerID = strings.ToLower(id)
		l, ok := h.o.Listeners[a.listenerID]
		if !ok {
			return admitted{route: rt}, false
		}
		a.listener, a.verifier = &l, l.Verifier
		a.source = strings.Replace(rt.template, "{"+listenerParam+"}", a.listenerID, 1)
	}
	return a, true
}

// jsonContent accepts JSON media types, and no content type at all: providers send
// "application/json" with or without a charset, or none.
func jsonContent(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// readBody reads the body once, up to the limit and within BodyReadTimeout of its start. A body
// still arriving then is answered 408 (logged, rate-limited): its place is freed at once.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, a admitted) ([]byte, bool) {
	rc := http.NewResponseController(w)
	// Without support for deadlines (no such server here), the server's ReadTimeout still
	// bounds the body.
	_ = rc.SetReadDeadline(time.Now().Add(h.o.BodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.BodyLimit))
	if err == nil {
		a.route.metrics.Body(len(body))
		// The core's answer needs no more reads: net/http's wait for the client going away must
		// not end (and cancel the request) at the body's deadline.
		_ = rc.SetReadDeadline(time.Time{})
		return body, true
	}
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		h.refuse(w, r, a, http.StatusRequestEntityTooLarge, codes.InvalidArgument, "body_too_large", "the body exceeds the size limit")
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		h.timedOut.Add(1)
		h.slowLog.Warn(h.o.Logger, "webhook refused: body not received in time", "provider", a.route.provider.String(), "path", r.URL.Path, "request_id", requestIDOf(r), "remote", r.RemoteAddr, "timeout", h.o.BodyReadTimeout)
		h.refuse(w, r, a, http.StatusRequestTimeout, codes.DeadlineExceeded, "body_timeout", "the body was not received in time")
	default:
		h.refuse(w, r, a, http.StatusBadRequest, codes.InvalidArgument, "body_unreadable", "the body could not be read")
	}
	return nil, false
}

var errNotConfigured = errors.New("no credentials configured for this route")

// credentials checks what the request's headers and URL carry, before a place is taken or the
// body read; a failure is answered 401 at once. proven reports whether the headers proved the
// sender (a token) rather than only promised a body signature.
func (h *Handler) credentials(w http.ResponseWriter, r *http.Request, a admitted) (proven, ok bool) {
	if a.verifier == nil {
		h.rejected(w, r, a, errNotConfigured, true)
		return false, false
	}
	proven, err := a.verifier.VerifyHeader(r.Header, r.URL.Query())
	if err != nil {
		h.rejected(w, r, a, err, true)
		return false, false
	}
	return proven, true
}

// authentic checks the request's signatures on its exact raw body.
func (h *Handler) authentic(w http.ResponseWriter, r *http.Request, a admitted, body []byte) bool {
	if err := a.verifier.VerifyBody(r.Header, body); err != nil {
		h.rejected(w, r, a, err, false)
		return false
	}
	return true
}

// rejected answers a request that is not authentic 401, counted and logged without secrets (at
// a rate limit: a flood of forgeries must not fill the disk).
// early says that its body has not been read.
func (h *Handler) rejected(w http.ResponseWriter, r *http.Request, a admitted, err error, early bool) {
	h.unauthorized.Add(1)
	h.rejectLog.Warn(h.o.Logger, "webhook rejected: not authentic", "provider", a.route.provider.String(), "path", r.URL.Path, "request_id", requestIDOf(r), "remote", r.RemoteAddr, "reason", err.Error())
	if early {
		h.refuse(w, r, a, http.StatusUnauthorized, codes.Unauthenticated, "unauthenticated", "the request is not authentic")
		return
	}
	a.route.metrics.Refused(http.StatusUnauthorized)
	h.fail(w, a.listenerFormat(), http.StatusUnauthorized, codes.Unauthenticated, "unauthenticated", "the request is not authentic")
}

// take takes a place in p, or answers 429 with Retry-After (logged, rate-limited).
func (h *Handler) take(w http.ResponseWriter, r *http.Request, a admitted, p places) bool {
	if p.take() {
		return true
	}
	h.overloaded.Add(1)
	pool := "max_in_flight"
	if p == h.unverified {
		pool = "max_unverified_in_flight"
	}
	h.busyLog.Warn(h.o.Logger, "webhook refused: too many at once", "provider", a.route.provider.String(), "path", r.URL.Path, "request_id", requestIDOf(r), "remote", r.RemoteAddr, "limit", pool, "places", cap(p))
	h.refuse(w, r, a, http.StatusTooManyRequests, codes.ResourceExhausted, "overloaded", "too many requests at once, retry later")
	return false
}

// refuse answers (and counts) a request whose body has not been read, or not in full, and closes its HTTP/1
// connection at once: net/http would otherwise read what remains of the body before sending
// the answer, or after it, at whatever pace the client sends it. (HTTP/2 needs none of it:
// the rest of one stream's body holds nothing else.)
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, a admitted, httpStatus int, code codes.Code, reason, msg string) {
	a.route.metrics.Refused(httpStatus)
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0))
	}
	h.fail(w, a.listenerFormat(), httpStatus, code, reason, msg)
}

func requestIDOf(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// verified is the request the generated handler gets: its context, ctx (the request's, with its
// span), carries the verified delivery, the core's whole input. Query parameters are dropped
// (they carried the Movement token, and none is part of a webhook) and the body, already read,
// is not read again. A shallow copy: Clone would deep-copy the headers on every webhook for
// nothing.
func (h *Handler) verified(ctx context.Context, r *http.Request, a admitted, body []byte) *http.Request {
	id := requestIDOf(r)
	d := ingest.Delivery{
		Provider:   a.route.provider,
		Raw:        body,
		Source:     a.source,
		Route:      a.route.template,
		RequestID:  id,
		Headers:    keptHeaders(r.Header),
		ReceivedAt: time.Now(),
		ListenerID: a.listenerID,
	}
	switch {
	case a.route.provider == hookstreamv1.Provider_PROVIDER_MOVEAPI:
		d.WebhookID = verify.SvixID(r.Header)
	case a.listener != nil && a.listener.DedupHeader != "":
		d.DedupID = r.Header.Get(a.listener.DedupHeader)
	}
	r2 := r.WithContext(ingest.NewContext(ctx, d))
	u := *r.URL
	u.RawQuery = ""
	r2.URL = &u
	r2.Body = http.NoBody
	r2.ContentLength = 0
	return r2
}

// keptHeaders are the request headers kept with a quarantined payload: what identifies and
// types it, never credentials or signatures.
func keptHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"Content-Type", "User-Agent", "Svix-Id", "Svix-Timestamp", "Webhook-Id", "Webhook-Timestamp"} {
		if v := h.Get(k); v != "" {
			out[strings.ToLower(k)] = v
		}
	}
	return out
}

// requestID keeps a sane incoming X-Request-Id, else makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 && isPrintableASCII(id) {
		return id
	}
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
