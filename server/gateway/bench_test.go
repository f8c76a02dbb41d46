package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// BenchmarkMvmntDelivery sends signed MVMNT deliveries of 1 and of 100 items (each item the
// SHIPMENT_DELIVERED of the load test, with its own id) to the front door in-process (no
// sockets): admission, verification, decoding, validation, typing, the durable append to the
// embedded event log and the answer. Allocations are the figure to compare; ns/op includes the
// fsync of each commit and varies with the machine's load.
func BenchmarkMvmntDelivery(b *testing.B) {
	for _, items := range []int{1, 100} {
		b.Run(fmt.Sprintf("items_%d", items), func(b *testing.B) {
			fd := start(b, nil)
			var n int
			bodies := func() []byte {
				body := []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[`)
				for i := range items {
					if i > 0 {
						body = append(body, ',')
					}
					n++
					body = fmt.Appendf(body, `{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-%012d","friendlyId":"SHP-12345","key":"ERP-SHIP-789"},"diff":null}`, n)
				}
				return append(body, "]}"...)
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				r := signed(b, "", "mvmnt", bodies())
				w := httptest.NewRecorder()
				b.StartTimer()
				fd.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
