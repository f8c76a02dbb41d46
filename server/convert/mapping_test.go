package convert

import (
	"testing"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
)

// TestMvmntDataFields checks that every MVMNT event type maps to a field of the data oneof, and
// pins the mapping of one type per entity.
func TestMvmntDataFields(t *testing.T) {
	t.Parallel()
	fields := (&mvmntv1.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("data").Fields()
	if got := len(mvmntData); got != 74 { // 73 types and UNSPECIFIED
		t.Errorf("mapped %d event types, want 74", got)
	}
	for typ, name := range mvmntData {
		if fields.ByName(name) == nil {
			t.Errorf("%v maps to %q, not a field of the data oneof", typ, name)
		}
	}
	for _, tt := range []struct {
		typ  string
		want string
	}{
		{"CUSTOMER_CREATED", "customer"}, {"COMPANY_UPDATED", "company"}, {"VENDOR_CONTACT_UPDATED", "contact"},
		{"CARRIER_DEACTIVATED", "carrier"}, {"CARRIER_FACTOR_CREATED", "carrier_factor"},
		{"VENDOR_PAYMENT_METHOD_UPDATED", "payment_method"}, {"VENDOR_CREATED", "vendor"}, {"LOCATION_UPDATED", "location"},
		{"SHIPMENT_DELIVERED", "shipment_delivered"}, {"CARRIER_PAYMENT_METHOD_DELETED", "deleted"},
		{"SHIPMENT_BOOKED", "other"}, {"CUSTOMER_INVOICE_CREATED", "other"}, {"QUOTE_CREATED", "other"}, {"COMMISSION_CREATED", "other"},
	} {
		if got := mvmntData[MvmntEventType(tt.typ)]; string(got) != tt.want {
			t.Errorf("%s maps to %q, want %q", tt.typ, got, tt.want)
		}
	}
}
