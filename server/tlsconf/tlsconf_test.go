package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookstream/hookstream/server/internal/testca"
	"github.com/hookstream/hookstream/server/tlsconf"
)

// serve runs a TLS listener of cfg on loopback that completes handshakes and closes.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return l.Addr().String()
}

// served returns the serial of the certificate the listener at addr presents.
func served(t *testing.T, addr string, ca *testca.CA) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Through a rename, as certificate managers do, so a handshake never reads half a file.
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// TestReload replaces a listener's certificate files: new handshakes get the new certificate
// without a restart, and files that do not load leave the previous certificate in service.
func TestReload(t *testing.T) {
	t.Parallel()
	ca := testca.New(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := ca.Server("one")
	c2, k2 := ca.Server("two")
	copyFile(t, c1, cert)
	copyFile(t, k1, key)
	cfg, err := tlsconf.Server(tlsconf.Files{CertFile: cert, KeyFile: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	first := served(t, addr, ca)

	// Until the new pair is served: the reloader looks at the files at most once a second.
	waitFor := func(what string, ok func(*big.Int) bool) *big.Int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := served(t, addr, ca)
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still serving %v", what, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	copyFile(t, c2, cert)
	copyFile(t, k2, key)
	second := waitFor("after the files changed", func(s *big.Int) bool { return s.Cmp(first) != 0 })

	// A half-written renewal (the certificate of one pair, the key of the other): still the
	// second certificate.
	copyFile(t, c1, cert)
	time.Sleep(1500 * time.Millisecond) // past the reloader's look-again interval
	if got := served(t, addr, ca); got.Cmp(second) != 0 {
		t.Errorf("after an unusable pair: serving %v, want the previous %v", got, second)
	}
	copyFile(t, k1, key)
	waitFor("after the pair was made whole", func(s *big.Int) bool { return s.Cmp(first) == 0 })
}

// TestServerErrors: settings that cannot be used are refused when the listener is built.
func TestServerErrors(t *testing.T) {
	t.Parallel()
	ca := testca.New(t)
	cert, key := ca.Server("x")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not pem"), 0o600)
	for _, tt := range []struct {
		name string
		f    tlsconf.Files
	}{
		{name: "cert_without_key", f: tlsconf.Files{CertFile: cert}},
		{name: "key_without_cert", f: tlsconf.Files{KeyFile: key}},
		{name: "client_ca_without_cert", f: tlsconf.Files{ClientCAFile: ca.File}},
		{name: "missing_file", f: tlsconf.Files{CertFile: cert, KeyFile: key + ".missing"}},
		{name: "mismatched_pair", f: tlsconf.Files{CertFile: ca.File, KeyFile: key}},
		{name: "client_ca_not_pem", f: tlsconf.Files{CertFile: cert, KeyFile: key, ClientCAFile: garbage}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := tlsconf.Server(tt.f, nil); !errors.Is(err, tlsconf.ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
	if cfg, err := tlsconf.Server(tlsconf.Files{}, nil); cfg != nil || err != nil {
		t.Errorf("no files: got %v %v, want no TLS", cfg, err)
	}
}
