package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/autogate/autogate/internal/api"
	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/manager/registry"
	"github.com/autogate/autogate/internal/tunnel"
)

// tunnelConfig is what a gateway needs to reach its manager.
type tunnelConfig struct {
	urls                   []string
	credFile, caFile       string
	cluster, node, version string
	// credential is AUTOGATE_MANAGER_CREDENTIAL, used when credFile is "".
	credential string
}

// newTunnelConnector builds the connector of a gateway configured with a
// manager (--manager-url). The credential comes from credFile, else from
// AUTOGATE_MANAGER_CREDENTIAL (how ECS injects a Secrets Manager secret);
// never from a flag. It must be this cluster's. caFile, if set, is trusted
// for the manager's certificate besides the system roots. Requests from
// the manager run as "manager:<user>" with the manager user's role.
func newTunnelConnector(tc tunnelConfig, h http.Handler, log *slog.Logger) (*tunnel.Connector, error) {
	cred := tc.credential
	if tc.credFile != "" {
		raw, err := os.ReadFile(tc.credFile)
		if err != nil {
			return nil, fmt.Errorf("manager credential: %w", err)
		}
		cred = strings.TrimSpace(string(raw))
	}
	if cred == "" {
		return nil, errors.New("--manager-url needs the cluster's credential: --manager-credential-file (AUTOGATE_MANAGER_CREDENTIAL_FILE) or AUTOGATE_MANAGER_CREDENTIAL")
	}
	if id, err := registry.ClusterOf(cred); err != nil {
		return nil, fmt.Errorf("manager credential: not a cluster credential (from `autogate manager create cluster`)")
	} else if id != tc.cluster {
		return nil, fmt.Errorf("manager credential: it is cluster %s's, this gateway is in cluster %s", id, tc.cluster)
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tc.caFile != "" {
		pem, err := os.ReadFile(tc.caFile)
		if err != nil {
			return nil, fmt.Errorf("manager CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("manager CA file %s: no PEM certificates", tc.caFile)
		}
		tcfg.RootCAs = pool
	}
	return tunnel.NewConnector(tunnel.Config{
		URLs: tc.urls, Credential: tunnel.Secret(cred), Cluster: tc.cluster, Node: tc.node, Version: tc.version,
		Handler: h, TLS: tcfg, Logger: log.With("component", "manager-tunnel"),
		Trust: func(ctx context.Context, c tunnel.Caller) context.Context {
			role, _ := auth.ParseRole(c.Role) // an unknown role allows nothing
			return api.WithPrincipal(ctx, auth.Principal{User: "manager:" + c.User, Role: role})
		},
	})
}

// tunnelRunner keeps the manager tunnel up for a term (tunnel.Connector).
type tunnelRunner interface {
	Run(ctx context.Context, epoch int64) error
}

// runTunnel keeps c's tunnel up for the lease term ctx at epoch and
// returns a function that waits until it is down; ctx ending closes it at
// once. A nil c (no manager configured) does nothing.
func runTunnel(ctx context.Context, c tunnelRunner, epoch int64) (wait func()) {
	if c == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx, epoch) // nil once ctx ends; failures are retried and logged inside
	}()
	return func() { <-done }
}
