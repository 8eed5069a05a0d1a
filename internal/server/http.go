package server

import (
	"crypto/tls"
	"crypto/x509"
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
	"github.com/autogate/autogate/internal/httpapi"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
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

// listen binds addr; advertise "" becomes scheme://bound-address, with
// an unspecified host (":8443", as on ECS) replaced by this host's own
// address: the advertise address is where standbys forward requests to,
// so it must reach this node, never a load balancer in front of it.
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
		bound := ln.Addr().(*net.TCPAddr)
		host := bound.IP
		if host.IsUnspecified() {
			host = hostIP()
		}
		e.advertise = fmt.Sprintf("%s://%s", e.scheme, net.JoinHostPort(host.String(), fmt.Sprint(bound.Port)))
	}
	return e, nil
}

// hostIP is this host's first non-loopback IPv4 address (a Fargate task's
// ENI address), else 127.0.0.1.
func hostIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.To4()
			}
		}
	}
	return net.IPv4(127, 0, 0, 1).To4()
}

// localPaths are served by every node, whatever its role: the load
// balancer's and the operators' probes and this node's own metrics.
var localPaths = []string{"/healthz", "/readyz", "/metrics"}

// forwardConfig is how a standby forwards to the active.
type forwardConfig struct {
	lead *leadership
	node string
	// noun is "" for the gateway, "manager" for the manager.
	noun          string
	leaseDuration time.Duration
	maxBody       int64
}

// forwardWait bounds how long a standby holds a request for an active: a
// takeover after the active died needs up to a lease duration plus a poll
// (2.9 s with the defaults); twice the lease duration leaves room for the
// new active's set-up.
func forwardWait(leaseDuration time.Duration) time.Duration {
	if leaseDuration <= 0 {
		leaseDuration = leasedynamo.DefaultLeaseDuration
	}
	return 2 * leaseDuration
}

// forwarding wraps h so that a standby forwards every request but the
// probes to the active the lease names (httpapi.Forwarder): any live node
// may sit behind the load balancer.
func forwarding(h http.Handler, fc forwardConfig, clk clock.Clock, log *slog.Logger) http.Handler {
	return httpapi.NewForwarder(httpapi.ForwardConfig{
		Leader: fc.lead, Node: fc.node, Noun: fc.noun, Local: h, LocalPaths: localPaths,
		Transport: forwardTransport(), Wait: forwardWait(fc.leaseDuration), MaxBodyBytes: fc.maxBody,
		Clock: clk, Logger: log,
	})
}

// forwardTransport reaches the active inside the VPC over TLS. Each task
// serves its own self-signed certificate, so there is no chain to verify:
// the forwarder pins the certificate fingerprint the active publishes in
// the lease item next to its address (which only the cluster's roles can
// write), and refuses any other peer at that address. No proxy from the
// environment: this is node-to-node traffic. Dials are short: a stopped
// task's address drops packets, and the request should move on to the
// next active, not hang.
func forwardTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12}, // the forwarder adds the pin
		TLSHandshakeTimeout: 2 * time.Second,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
}

// tlsFiles says where the certificate comes from: certFile/keyFile if
// set, else a self-signed one created under dir.
type tlsFiles struct {
	certFile, keyFile, dir string
}

// newHTTPServer returns h's server with the timeouts every Autogate
// server uses; writeTimeout covers the longest synchronous request.
// tlsCfg nil serves plain HTTP.
func newHTTPServer(h http.Handler, writeTimeout time.Duration, tlsCfg *tls.Config, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.TLSConfig = tlsCfg
	return srv
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

// serverTLS loads (or first creates) the certificate tf names and returns
// the server's TLS config with the certificate's fingerprint, which the
// node publishes in the lease (httpapi.CertFingerprint). tf nil: plain
// HTTP, nil and "".
func serverTLS(tf *tlsFiles, clk clock.Clock, stderr io.Writer) (*tls.Config, string, error) {
	if tf == nil {
		return nil, "", nil
	}
	certFile, keyFile := tf.certFile, tf.keyFile
	if certFile == "" {
		certFile, keyFile = filepath.Join(tf.dir, "tls.crt"), filepath.Join(tf.dir, "tls.key")
		host, _ := os.Hostname() // best effort: localhost names are always included
		if created, err := devcert.Ensure(certFile, keyFile, []string{host}, clk.Now()); err != nil {
			return nil, "", err
		} else if created {
			fmt.Fprintf(stderr, "autogate: created a self-signed TLS certificate %s\n", certFile)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("TLS: %w", err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, "", fmt.Errorf("TLS: %w", err)
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, httpapi.CertFingerprint(leaf), nil
}
