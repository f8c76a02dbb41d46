package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/ingest"
)

// rpcProvider says which provider each WebhookService RPC receives: which verifier checks its
// requests. The routes themselves come from the RPCs' google.api.http annotations.
var rpcProvider = map[protoreflect.Name]hookstreamv1.Provider{
	"ReceiveMoveApiWebhook":  hookstreamv1.Provider_PROVIDER_MOVEAPI,
	"ReceiveMovementWebhook": hookstreamv1.Provider_PROVIDER_MOVEMENT,
	"ReceiveMvmntDelivery":   hookstreamv1.Provider_PROVIDER_MVMNT,
	"NotifyListener":         hookstreamv1.Provider_PROVIDER_LISTENER,
}

// listenerParam is the path variable of the listener route.
const listenerParam = "listener_id"

// webhookRoute is one webhook route.
type webhookRoute struct {
	// template is the route's path template, e.g. "/webhooks/v1/listeners/{listener_id}/notify".
	template string
	provider hookstreamv1.Provider
	// spanName is the name of its requests' spans, "POST <template>".
	spanName string
	// metrics counts what the front door refuses on the route, and the bodies it reads.
	metrics *ingest.RouteMetrics
}

// webhookRoutes reads the route of every WebhookService RPC from its google.api.http
// annotation: the one route table, each route with its metrics. It fails when an RPC has no POST
// route or no provider.
func webhookRoutes(metrics *ingest.Metrics) (map[string]webhookRoute, error) {
	sd := hookstreamv1.File_hookstream_v1_webhook_service_proto.Services().ByName("WebhookService")
	routes := make(map[string]webhookRoute, sd.Methods().Len())
	for i := range sd.Methods().Len() {
		m := sd.Methods().Get(i)
		p, ok := rpcProvider[m.Name()]
		if !ok {
			return nil, fmt.Errorf("gateway: rpc %s receives no known provider", m.Name())
		}
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule.GetPost() == "" {
			return nil, fmt.Errorf("gateway: rpc %s has no POST route", m.Name())
		}
		routes[rule.GetPost()] = webhookRoute{template: rule.GetPost(), provider: p, spanName: http.MethodPost + " " + rule.GetPost(), metrics: metrics.Route(p, rule.GetPost())}
	}
	return routes, nil
}

// template returns the path template of a pattern the mux matched: its String form names each
// variable with its own pattern ("{listener_id=*}"), the annotation without ("{listener_id}").
func template(pattern string) string { return strings.ReplaceAll(pattern, "=*}", "}") }
