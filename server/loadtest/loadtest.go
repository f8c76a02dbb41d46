// Package loadtest measures the whole HTTP front door against a bare net/http handler in the
// same run: correctly authenticated MVMNT deliveries from many concurrent keep-alive connections
// on loopback, each answered 2xx only after its durable append, beside a handler that reads the
// body and answers 200. Both servers run as child processes of the hookstream binary, so their
// CPU time and memory are measured apart from the load generator's.
package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Token is the MVMNT token the benchmark's hookstream is configured with.
const Token = "loadtest-token"

// Options configures Run.
type Options struct {
	// Executable is the hookstream binary (os.Executable() for the running one).
	Executable string
	// Connections is the number of concurrent connections. Default 64.
	Connections int
	// Duration of each measured phase. Default 10 s.
	Duration time.Duration
	// Durabilities to measure hookstream with. Default "always" and "os".
	Durabilities []string
	// DataDir is a scratch directory for hookstream's event log.
	DataDir string
}

// Result is one measured server.
type Result struct {
	Name        string
	Requests    int64
	Errors      int64
	RPS         float64
	P50, P99    time.Duration
	CPUPerReq   time.Duration // server process CPU (user+system) per request
	MaxRSSBytes int64         // server process peak resident set
}

// Run measures the bare handler, then hookstream with each durability, and returns the results
// in that order.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Connections <= 0 {
		o.Connections = 64
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if len(o.Durabilities) == 0 {
		o.Durabilities = []string{"always", "os"}
	}
	var out []Result
	bare, err := measure(ctx, o, "bare net/http", []string{"loadtest-bare"}, nil, "/")
	if err != nil {
		return nil, err
	}
	out = append(out, bare)
	for i, d := range o.Durabilities {
		dir := fmt.Sprintf("%s/run-%d", o.DataDir, i)
		args := []string{"serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--data-dir", dir, "--durability", d}
		env := []string{"HOOKSTREAM_PROVIDERS_MVMNT_TOKENS=" + Token}
		r, err := measure(ctx, o, "hookstream durability="+d, args, env, "/webhooks/mvmnt")
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// measure starts the server, loads it for o.Duration and stops it.
func measure(ctx context.Context, o Options, name string, args, env []string, path string) (Result, error) {
	cmd := exec.CommandContext(ctx, o.Executable, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return Result{}, err
	}
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	addr, err := servingAddr(stderr)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	url := "http://" + addr + path

	// Warm up, then measure the server's CPU over the measured phase only.
	load(ctx, url, o.Connections, time.Second)
	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return Result{}, err
	}
	res := load(ctx, url, o.Connections, o.Duration)
	cpu1, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return Result{}, err
	}
	rss, _ := maxRSS(cmd.Process.Pid)
	res.Name = name
	if res.Requests > 0 {
		res.CPUPerReq = (cpu1 - cpu0) / time.Duration(res.Requests)
	}
	res.MaxRSSBytes = rss
	return res, nil
}

// servingAddr reads the child's JSON log until it says where HTTP listens.
func servingAddr(stderr io.Reader) (string, error) {
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		var l struct{ Msg, HTTP string }
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "hookstream serving" {
			go io.Copy(io.Discard, stderr)
			return l.HTTP, nil
		}
	}
	return "", errors.New("server exited before serving")
}

var seq atomic.Int64

// delivery is a distinct MVMNT delivery (its own data.id), so every request is a new event.
func delivery() []byte {
	n := seq.Add(1)
	return fmt.Appendf(nil, `{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-%012d","friendlyId":"SHP-12345","key":"ERP-SHIP-789"},"diff":null}]}`, n)
}

// load sends requests from conns connections for d and returns what it saw.
func load(ctx context.Context, url string, conns int, d time.Duration) Result {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var lat []time.Duration
	var reqs, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(delivery()))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Api-Key", Token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local = append(local, time.Since(t0))
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				reqs.Add(1)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := Result{Requests: reqs.Load(), Errors: errs.Load(), RPS: float64(reqs.Load()) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.P50 = lat[len(lat)/2]
		r.P99 = lat[len(lat)*99/100]
	}
	return r
}

// cpuTime is a process's user+system CPU time, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after the last ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// maxRSS is a process's peak resident set, from /proc/<pid>/status (VmHWM).
func maxRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmHWM")
}

// ServeBare runs the bare handler on a loopback port until ctx ends: read the body, answer 200.
// It logs the same "hookstream serving" line as the service, so Run can find it.
func ServeBare(ctx context.Context, stderr io.Writer) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 5 * time.Second}
	json.NewEncoder(stderr).Encode(map[string]string{"msg": "hookstream serving", "http": lis.Addr().String()})
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Format renders results as a table, with each server's requests/s as a multiple of the first's.
func Format(rs []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s %10s %7s %9s %9s %12s %9s %7s\n", "server", "req/s", "x bare", "p50", "p99", "CPU µs/req", "RSS MiB", "errors")
	for _, r := range rs {
		ratio := 0.0
		if rs[0].RPS > 0 {
			ratio = r.RPS / rs[0].RPS
		}
		fmt.Fprintf(&b, "%-28s %10.0f %7.2f %9s %9s %12.1f %9.1f %7d\n", r.Name, r.RPS, ratio,
			r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), float64(r.CPUPerReq.Nanoseconds())/1e3, float64(r.MaxRSSBytes)/(1<<20), r.Errors)
	}
	return b.String()
}
