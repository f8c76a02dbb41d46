package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// BenchmarkFrontDoor sends distinct, authenticated MVMNT deliveries through the real HTTP server,
// gateway, ingestion core and embedded event log (durability always), from parallel clients.
// The load generator shares the process: use `hookstream bench` for figures per server process.
func BenchmarkFrontDoor(b *testing.B) {
	fd := start(b, nil)
	var n atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Appendf(nil, `{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-%012d","friendlyId":"SHP-12345","key":"ERP-SHIP-789"},"diff":null}]}`, n.Add(1))
			req, _ := http.NewRequest(http.MethodPost, fd.url+"/webhooks/mvmnt", bytes.NewReader(body))
			req.Header.Set("X-Api-Key", mvmntToken)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
