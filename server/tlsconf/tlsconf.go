// Package tlsconf builds the TLS configurations of hookstream's listeners from certificate and key
// files, reloading them when they change (a renewed certificate takes effect without a restart),
// and optionally verifying client certificates against a CA.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ErrConfig is wrapped by the errors of files that cannot be used.
var ErrConfig = errors.New("invalid TLS configuration")

// checkInterval is how often, at most, a handshake looks whether the files changed.
const checkInterval = time.Second

// Reloader serves the certificate of a pair of files, loaded again when either file's size or
// modification time changes. A pair that cannot be loaded keeps the previous certificate in
// service (and is logged). It is safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string    // the files' sizes and modification times when loaded
	checked time.Time // last look at the files
}

// NewReloader loads certFile and keyFile (PEM). Errors wrap ErrConfig.
func NewReloader(certFile, keyFile string, logger *slog.Logger) (*Reloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) stampNow() (string, error) {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

func (r *Reloader) load() error {
	stamp, err := r.stampNow()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("%w: %s and %s: %w", ErrConfig, r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &cert, stamp
	return nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate, reloaded first when the
// files changed.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= checkInterval {
		r.checked = time.Now()
		if stamp, err := r.stampNow(); err == nil && stamp != r.stamp {
			if err := r.load(); err != nil {
				r.logger.Error("tls: certificate files changed but do not load; the previous certificate stays in service", "cert", r.certFile, "err", err)
			} else {
				r.logger.Info("tls: certificate reloaded", "cert", r.certFile)
			}
		}
	}
	return r.cert, nil
}

// Files are a listener's TLS files. An empty CertFile means no TLS.
type Files struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the listener ask for client certificates and verify them
	// against this CA (PEM). Clients without a certificate are still accepted: they may
	// authenticate with a token.
	ClientCAFile string
}

// Server returns the TLS configuration of a listener, nil when f has no certificate. Errors
// wrap ErrConfig.
func Server(f Files, logger *slog.Logger) (*tls.Config, error) {
	if f.CertFile == "" && f.KeyFile == "" {
		if f.ClientCAFile != "" {
			return nil, fmt.Errorf("%w: a client CA needs the listener's own certificate and key", ErrConfig)
		}
		return nil, nil
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, fmt.Errorf("%w: a certificate needs its key, and a key its certificate", ErrConfig)
	}
	r, err := NewReloader(f.CertFile, f.KeyFile, logger)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
	if f.ClientCAFile != "" {
		pem, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrConfig, f.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}
