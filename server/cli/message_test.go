package cli

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("send: unknown provider"), "send: unknown provider"},
		{"status", status.Error(codes.NotFound, "no such consumer group"), "not found: no such consumer group"},
		{"wrapped_status", fmt.Errorf("groups show: %w", status.Error(codes.DeadlineExceeded, "too slow")), "groups show: deadline exceeded: too slow"},
		{"joined", errors.Join(errors.New("first"), errors.New("second")), "first; second"},
		{"status_message_with_newline", status.Error(codes.Unavailable, "a\nb"), "unavailable: a; b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Message(tt.err); got != tt.want {
				t.Errorf("Message(%v): got %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
