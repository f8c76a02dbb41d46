package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookstream/hookstream/server/convert"
)

// fail answers an error the front door itself found, in the route's error format.
func (h *Handler) fail(w http.ResponseWriter, listener bool, httpStatus int, code codes.Code, reason, msg string) {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: strings.ToUpper(reason), Domain: "hookstream"}); err == nil {
		st = d
	}
	writeStatus(w, listener, httpStatus, st)
}

// writeError is the webhook mux's error handler: the core's status, in the matched route's
// format, with its HTTP status. The core's messages are public by construction; codes that mean
// a defect get a fixed message.
func (h *Handler) writeError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	pattern, _ := runtime.HTTPPattern(r.Context())
	rt := h.routes[template(pattern.String())]
	listener := admitted{route: rt}.listenerFormat()
	switch st.Code() {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		h.o.Logger.Error("webhook failed", "path", r.URL.Path, "err", err)
		st = status.New(codes.Internal, "internal error")
	}
	writeStatus(w, listener, runtime.HTTPStatusFromCode(st.Code()), st)
}

// writeRoutingError answers requests the webhook mux matched to no route: 404 with an empty body
// (the listener contract's answer for an unknown listener, and nothing for a prober to learn),
// 405 with Allow for a route's path with another method.
func (h *Handler) writeRoutingError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Allow", http.MethodPost)
	listener := strings.HasPrefix(r.URL.Path, "/webhooks/v1/listeners/")
	h.fail(w, listener, http.StatusMethodNotAllowed, codes.Unimplemented, "method_not_allowed", "only POST is accepted")
}

// writeStatus writes st as the body: a google.rpc.Status, or in the listener contract's format
// {"error":{"code","message"}}. 503 and 429 carry Retry-After.
func writeStatus(w http.ResponseWriter, listener bool, httpStatus int, st *status.Status) {
	w.Header().Set("Content-Type", "application/json")
	if httpStatus == http.StatusServiceUnavailable || httpStatus == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", RetryAfter)
	}
	w.WriteHeader(httpStatus)
	if listener {
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": listenerCode(httpStatus), "message": st.Message()}})
		return
	}
	b, err := convert.MarshalOptions.Marshal(st.Proto())
	if err != nil {
		return
	}
	w.Write(b)
}

func listenerCode(httpStatus int) string {
	switch httpStatus {
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusBadRequest:
		return "BAD_REQUEST"
	case http.StatusRequestEntityTooLarge:
		return "PAYLOAD_TOO_LARGE"
	case http.StatusRequestTimeout:
		return "REQUEST_TIMEOUT"
	case http.StatusMethodNotAllowed:
		return "METHOD_NOT_ALLOWED"
	case http.StatusUnsupportedMediaType:
		return "UNSUPPORTED_MEDIA_TYPE"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusTooManyRequests:
		return "TOO_MANY_REQUESTS"
	case http.StatusNotFound:
		return "NOT_FOUND"
	}
	return "ERROR"
}
