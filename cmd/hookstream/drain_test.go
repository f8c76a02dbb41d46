package main_test

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestDrainExitsZero starts the binary with a 1 s shutdown timeout, holds a webhook whose body
// trickles and an HTTP tail that is never read, and sends SIGTERM: both are cut at the timeout
// and the process exits 0, since no acknowledged webhook was at risk.
func TestDrainExitsZero(t *testing.T) {
	t.Parallel()
	bin := build(t)
	httpAddr, apiAddr := freePort(t), freePort(t)
	cmd := startProcessEnv(t, bin, []string{"HOOKSTREAM_PROVIDERS_MVMNT_TOKENS=drain-test-token"},
		"--http-addr", httpAddr, "--grpc-addr", "127.0.0.1:0", "--api-addr", apiAddr, "--data-dir", t.TempDir(), "--shutdown-timeout", "1s")
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	slow := dial(t, httpAddr)
	fmt.Fprintf(slow, "POST /webhooks/mvmnt HTTP/1.1\r\nHost: h\r\nX-Api-Key: drain-test-token\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	tail := dial(t, apiAddr)
	io.WriteString(tail, "GET /v1/events:tail HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // not an assertion: both requests reach their handlers

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM with a slow request and a tail open: %v, want exit status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30 s after SIGTERM, with a shutdown timeout of 1 s")
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
