package samples_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/server/samples"
)

// Types names the event types of a provider that have a sample.
func ExampleTypes() {
	types, err := samples.Types(samples.Movement)
	if err != nil {
		panic(err)
	}
	for _, t := range types {
		fmt.Println(t)
	}
	// Output:
	// call.finished
	// email.sent
	// subscription.unsubscribe
	// text_message.received
	// text_message.sent
}

// A sample's body has fresh ids and the given time wherever the provider puts one.
func ExampleSample_Body() {
	s, err := samples.Get(samples.MVMNT, "SHIPMENT_DELIVERED")
	if err != nil {
		panic(err)
	}
	var d struct {
		SentAt string
		Events []struct {
			Event, Timestamp string
			Data             struct{ ID, FriendlyID string }
		}
	}
	if err := json.Unmarshal(s.Body(time.Date(2025, 1, 15, 14, 30, 0, 0, time.UTC)), &d); err != nil {
		panic(err)
	}
	e := d.Events[0]
	fmt.Println(d.SentAt, e.Event, e.Timestamp, e.Data.FriendlyID, len(e.Data.ID))
	// Output: 2025-01-15T14:30:00.000Z SHIPMENT_DELIVERED 2025-01-15T14:30:00.000Z SHP-12345 36
}
