// Package tlsreload serves TLS configurations whose certificates, keys and
// CA files can be replaced while the process runs: the files are read again
// on SIGHUP and when one of them changes, new handshakes use what was read,
// connections already open keep what they began with, and a file that does
// not load leaves the last good one in place. Rotating a certificate then
// needs no restart, so no connection and no stream is dropped for it.
package tlsreload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Files names the PEM files of one end of a TLS hop. Empty names are
// unused.
type Files struct {
	// Cert and Key are this end's certificate chain and private key: the
	// server's certificate, or the client certificate a client presents.
	// Both or neither.
	Cert, Key string
	// CA holds the certificates that the peer's chain must lead to: client
	// certificates on a server (mutual TLS), servers' on a client.
	CA string
}

// CheckInterval is how often, at most, a handshake looks at the files'
// modification times: a stat per file per handshake would cost more than
// the rotation it watches for.
const CheckInterval = time.Second

// ALPN is what a server built here offers: h2 for gRPC and the gateway's
// REST, http/1.1 for health checks and WebSockets.
var ALPN = []string{"h2", "http/1.1"}

// Source holds the files' last good contents and reads them again when
// asked or when they change.
type Source struct {
	files      Files
	logger     *slog.Logger
	checkEvery time.Duration // CheckInterval, shorter in tests

	mu        sync.Mutex
	cert      *tls.Certificate // nil without Files.Cert
	pool      *x509.CertPool   // nil without Files.CA
	stamps    map[string]stamp // what each file looked like when last read
	lastCheck time.Time
	server    *tls.Config // built from cert and pool, rebuilt when they change
}

// stamp is what tells a changed file without reading it.
type stamp struct {
	mod  time.Time
	size int64
}

// Load reads files once; unlike later reloads, a file that does not load
// is an error, since there is nothing to fall back on. logger (nil:
// discard) gets a warning for every reload that fails and a line for every
// one that changes something.
func Load(files Files, logger *slog.Logger) (*Source, error) {
	if (files.Cert == "") != (files.Key == "") {
		return nil, fmt.Errorf("certificate %q and key %q: need both or neither", files.Cert, files.Key)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{files: files, logger: logger, checkEvery: CheckInterval, stamps: map[string]stamp{}}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads every file now. What fails to load keeps its previous
// contents, with a warning.
func (s *Source) Reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(); err != nil {
		s.logger.Warn("TLS files not reloaded, keeping the previous ones", "err", err)
	}
}

// reload reads the files, keeping the part that failed; s.mu is held, or s
// is not shared yet.
func (s *Source) reload() error {
	s.lastCheck = time.Now()
	var errs []error
	if s.files.Cert != "" {
		// Stamped before reading, so that a write racing the read is seen
		// as a change at the next check.
		s.stampFiles(s.files.Cert, s.files.Key)
		cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("certificate: %w", err))
		default:
			if s.cert != nil {
				s.logger.Info("TLS certificate reloaded", "file", s.files.Cert, "not_after", cert.Leaf.NotAfter)
			}
			s.cert = &cert
		}
	}
	if s.files.CA != "" {
		s.stampFiles(s.files.CA)
		pool, err := loadPool(s.files.CA)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("CA: %w", err))
		default:
			if s.pool != nil {
				s.logger.Info("TLS CA reloaded", "file", s.files.CA)
			}
			s.pool = pool
		}
	}
	s.server = nil
	return errors.Join(errs...)
}

func (s *Source) stampFiles(names ...string) {
	for _, name := range names {
		s.stamps[name] = statFile(name)
	}
}

func statFile(name string) stamp {
	fi, err := os.Stat(name)
	if err != nil {
		return stamp{}
	}
	return stamp{fi.ModTime(), fi.Size()}
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// current returns the contents to use for a new handshake, reading the
// files again first if one of them changed since it was last read.
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.lastCheck) >= s.checkEvery {
		s.lastCheck = now
		for name, was := range s.stamps {
			if statFile(name) != was {
				if err := s.reload(); err != nil {
					s.logger.Warn("TLS files changed but did not load, keeping the previous ones", "err", err)
				}
				break
			}
		}
	}
	return s.cert, s.pool
}

// ServerConfig is the configuration of a TLS server that presents the
// certificate, and, with a CA, accepts only clients whose certificate
// leads to it. It needs Files.Cert.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: ALPN,
		// Per handshake, so that both the certificate and the client CA
		// pool can change; tls.Config.GetCertificate could change only the
		// first.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.serverConfig(), nil },
	}
}

func (s *Source) serverConfig() *tls.Config {
	cert, pool := s.current()
	s.mu.Lock()
	defer s.mu.Unlock()
	// One config per reload rather than per handshake: a config sets
	// itself up on first use (session ticket keys among others).
	if s.server != nil {
		return s.server
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   ALPN,
		Certificates: []tls.Certificate{*cert},
	}
	if pool != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pool
		// A resumed session skips chain verification, and a ticket
		// outlives a CA rotation by days: check its client against the
		// pool of now.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if !cs.DidResume {
				return nil
			}
			return verifyChain(cs.PeerCertificates, pool, "", x509.ExtKeyUsageClientAuth)
		}
	}
	s.server = cfg
	return cfg
}

// ClientConfig is the configuration of a TLS client that accepts a server
// only if its chain leads to Files.CA (which it needs) and is valid for
// serverName, and that presents Files.Cert, if any, when asked.
func (s *Source) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		// The documented way to verify with a CA pool that changes: Go's
		// own verification would use a pool fixed in the config.
		// VerifyConnection does all it would, chain and name, against the
		// pool of the moment, resumed sessions included.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := s.current()
			return verifyChain(cs.PeerCertificates, pool, serverName, x509.ExtKeyUsageServerAuth)
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert, _ := s.current(); cert != nil {
				return cert, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
		// Resumed sessions skip the key exchange's signatures, the bulk
		// of a handshake's cost, on every reconnection.
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
}

// verifyChain checks that certs[0] leads, through the rest of certs, to a
// root in pool, and is valid for name unless name is "".
func verifyChain(certs []*x509.Certificate, pool *x509.CertPool, name string, usage x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return errors.New("tls: peer sent no certificate")
	}
	if pool == nil {
		return errors.New("tls: no CA to verify the peer with")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		DNSName:       name,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	return err
}

// ReloadOnSIGHUP reloads every source each time the process gets SIGHUP,
// until ctx ends. The handler is in place when it returns. Without
// sources it does nothing, so that SIGHUP keeps its default meaning for a
// process without TLS.
func ReloadOnSIGHUP(ctx context.Context, sources ...*Source) {
	if len(sources) == 0 {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				for _, s := range sources {
					s.Reload()
				}
			}
		}
	}()
}
