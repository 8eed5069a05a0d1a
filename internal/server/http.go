package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/devcert"
)

// NewLogger returns the JSON (or text) logger at level on w; level and
// format are checked by the configuration's Validate.
func NewLogger(level, format string, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level)) // validated by Config.Validate
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// endpoint is a bound listener and the address the node advertises.
type endpoint struct {
	ln        net.Listener
	scheme    string
	advertise string
}

// listen binds addr; advertise "" becomes scheme://bound-address.
func listen(addr, advertise string, plaintext bool) (*endpoint, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	e := &endpoint{ln: ln, scheme: "https", advertise: advertise}
	if plaintext {
		e.scheme = "http"
	}
	if e.advertise == "" {
		e.advertise = fmt.Sprintf("%s://%s", e.scheme, ln.Addr())
	}
	return e, nil
}

// tlsFiles says where the certificate comes from: certFile/keyFile if
// set, else a self-signed one created under dir.
type tlsFiles struct {
	certFile, keyFile, dir string
}

// newHTTPServer returns h's server with the timeouts every Autogate
// server uses; writeTimeout covers the longest synchronous request.
func newHTTPServer(h http.Handler, writeTimeout time.Duration, tf *tlsFiles, clk clock.Clock, stderr io.Writer, log *slog.Logger) (*http.Server, error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if tf != nil {
		cfg, err := serverTLS(*tf, clk, stderr)
		if err != nil {
			return nil, err
		}
		srv.TLSConfig = cfg
	}
	return srv, nil
}

// serveHTTP serves srv on ln (TLS if srv has a TLS config) until Shutdown.
func serveHTTP(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig == nil {
		err = srv.Serve(ln)
	} else {
		err = srv.ServeTLS(ln, "", "")
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve: %w", err)
}

func serverTLS(tf tlsFiles, clk clock.Clock, stderr io.Writer) (*tls.Config, error) {
	certFile, keyFile := tf.certFile, tf.keyFile
	if certFile == "" {
		certFile, keyFile = filepath.Join(tf.dir, "tls.crt"), filepath.Join(tf.dir, "tls.key")
		host, _ := os.Hostname() // best effort: localhost names are always included
		if created, err := devcert.Ensure(certFile, keyFile, []string{host}, clk.Now()); err != nil {
			return nil, err
		} else if created {
			fmt.Fprintf(stderr, "autogate: created a self-signed TLS certificate %s\n", certFile)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
