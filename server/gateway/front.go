package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/ingest"
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
// the core, in order. Each step that refuses the request answers it.
func (h *Handler) admit(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		a, ok := h.matched(r, params)
		if !ok {
			// An unknown (or malformed) listener id: 404 with an empty body, as the listener
			// contract says, so nothing tells a prober which ids exist.
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if !jsonContent(r.Header.Get("Content-Type")) {
			h.fail(w, a.listenerFormat(), http.StatusUnsupportedMediaType, codes.InvalidArgument, "unsupported_media_type", "the body must be JSON")
			return
		}
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			h.overloaded.Add(1)
			h.fail(w, a.listenerFormat(), http.StatusTooManyRequests, codes.ResourceExhausted, "overloaded", "too many requests at once, retry later")
			return
		}
		body, ok := h.readBody(w, r, a)
		if !ok || !h.authentic(w, r, a, body) {
			return
		}
		next(w, h.verified(r, a, body), params)
	}
}

// matched returns the route the mux matched r to, with the listener the path names.
func (h *Handler) matched(r *http.Request, params map[string]string) (admitted, bool) {
	pattern, _ := runtime.HTTPPattern(r.Context())
	rt, ok := h.routes[template(pattern.String())]
	if !ok {
		return admitted{}, false
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
			return admitted{}, false
		}
		a.listenerID = strings.ToLower(id)
		l, ok := h.o.Listeners[a.listenerID]
		if !ok {
			return admitted{}, false
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

// readBody reads the body once, up to the limit.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, a admitted) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.BodyLimit))
	if err == nil {
		return body, true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		h.fail(w, a.listenerFormat(), http.StatusRequestEntityTooLarge, codes.InvalidArgument, "body_too_large", "the body exceeds the size limit")
		return nil, false
	}
	h.fail(w, a.listenerFormat(), http.StatusBadRequest, codes.InvalidArgument, "body_unreadable", "the body could not be read")
	return nil, false
}

var errNotConfigured = errors.New("no credentials configured for this route")

// authentic checks the request on its exact raw body; a failure is answered 401, counted and
// logged without secrets.
func (h *Handler) authentic(w http.ResponseWriter, r *http.Request, a admitted, body []byte) bool {
	err := errNotConfigured
	if a.verifier != nil {
		err = a.verifier.Verify(r.Header, r.URL.Query(), body)
	}
	if err == nil {
		return true
	}
	h.unauthorized.Add(1)
	id, _ := r.Context().Value(requestIDKey{}).(string)
	h.o.Logger.Warn("webhook rejected: not authentic", "provider", a.route.provider.String(), "path", r.URL.Path, "request_id", id, "remote", r.RemoteAddr, "reason", err.Error())
	h.fail(w, a.listenerFormat(), http.StatusUnauthorized, codes.Unauthenticated, "unauthenticated", "the request is not authentic")
	return false
}

// verified is the request the generated handler gets: its context carries the verified
// delivery, the core's whole input. Query parameters are dropped (they carried the Movement
// token, and none is part of a webhook) and the body, already read, is not read again. A
// shallow copy: Clone would deep-copy the headers on every webhook for nothing.
func (h *Handler) verified(r *http.Request, a admitted, body []byte) *http.Request {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	d := ingest.Delivery{
		Provider:   a.route.provider,
		Raw:        body,
		Source:     a.source,
		RequestID:  id,
		Headers:    keptHeaders(r.Header),
		ReceivedAt: time.Now(),
		ListenerID: a.listenerID,
	}
	switch {
	case a.route.provider == hookstreamv1.Provider_PROVIDER_MOVEAPI:
		d.WebhookID = svixID(r.Header)
	case a.listener != nil && a.listener.DedupHeader != "":
		d.DedupID = r.Header.Get(a.listener.DedupHeader)
	}
	r2 := r.WithContext(ingest.NewContext(r.Context(), d))
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

func svixID(h http.Header) string {
	if id := h.Get("Svix-Id"); id != "" {
		return id
	}
	return h.Get("Webhook-Id")
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
