package manager

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/tunnel"
)

// Config configures `autogate manager`: defaults, then AUTOGATE_MANAGER_*
// environment variables, then flags, then Validate. It holds no secret.
type Config struct {
	DataDir       string
	Listen        string
	Advertise     string
	Cluster       string // the manager's own namespace in the store
	Node          string
	Store         string // bolt or dynamodb
	Table         string
	TLSCert       string
	TLSKey        string
	Plaintext     bool
	AdminPassFile string
	LogLevel      string
	LogFormat     string
	// Heartbeat is the ping period gateways are told to keep; a tunnel
	// silent for four is dropped, one silent for two is shown stale.
	Heartbeat time.Duration
	// RequestTimeout bounds a routed request (runs and waits get their own
	// wait plus 10 s, up to 5 min 10 s).
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	MaxFrameBytes  int
	ShutdownGrace  time.Duration
	// Lease timing (store=dynamodb); zero takes the lease package defaults.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// EMFMetrics makes the active manager write the Autogate/ActiveHolder
	// CloudWatch metric (dimension Cluster = this Cluster) as an Embedded
	// Metric Format line on stdout, at term start and once a minute
	// (default off; the CDK manager stack turns it on for its alarm).
	EMFMetrics bool
}

// DefaultDataDir is $XDG_DATA_HOME/autogate-manager, else
// ~/.local/share/autogate-manager: apart from a gateway's on the same host.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "autogate-manager")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "autogate-manager")
	}
	return "autogate-manager-data"
}

// DefaultConfig is a manager on the embedded store, TLS on 127.0.0.1:9443
// with a self-signed certificate.
func DefaultConfig() Config {
	host, _ := os.Hostname() // an empty host name still yields a usable node ID
	h, _, _ := strings.Cut(strings.ToLower(host), ".")
	if h == "" {
		h = "manager"
	}
	return Config{
		DataDir: DefaultDataDir(), Listen: "127.0.0.1:9443", Cluster: "manager",
		Node:  fmt.Sprintf("%s-%d", h, os.Getpid()),
		Store: "bolt", LogLevel: "info", LogFormat: "json",
		Heartbeat: 5 * time.Second, RequestTimeout: time.Minute, MaxBodyBytes: 1 << 20,
		MaxFrameBytes: tunnel.DefaultMaxFrame, ShutdownGrace: 30 * time.Second,
	}
}

// env lists each setting's environment variable.
var env = map[string]string{
	"data-dir": "AUTOGATE_MANAGER_DATA_DIR", "listen": "AUTOGATE_MANAGER_LISTEN", "advertise": "AUTOGATE_MANAGER_ADVERTISE_ADDR",
	"cluster": "AUTOGATE_MANAGER_CLUSTER", "node": "AUTOGATE_MANAGER_NODE", "store": "AUTOGATE_MANAGER_STORE",
	"table": "AUTOGATE_MANAGER_TABLE", "tls-cert": "AUTOGATE_MANAGER_TLS_CERT", "tls-key": "AUTOGATE_MANAGER_TLS_KEY",
	"plaintext": "AUTOGATE_MANAGER_PLAINTEXT", "admin-password-file": "AUTOGATE_MANAGER_ADMIN_PASSWORD_FILE",
	"log-level": "AUTOGATE_MANAGER_LOG_LEVEL", "log-format": "AUTOGATE_MANAGER_LOG_FORMAT",
	"heartbeat": "AUTOGATE_MANAGER_HEARTBEAT", "request-timeout": "AUTOGATE_MANAGER_REQUEST_TIMEOUT",
	"max-body": "AUTOGATE_MANAGER_MAX_BODY", "max-frame": "AUTOGATE_MANAGER_MAX_FRAME",
	"shutdown-grace": "AUTOGATE_MANAGER_SHUTDOWN_GRACE", "lease-duration": "AUTOGATE_MANAGER_LEASE_DURATION",
	"renew-deadline": "AUTOGATE_MANAGER_RENEW_DEADLINE", "retry-period": "AUTOGATE_MANAGER_RETRY_PERIOD",
	"emf-metrics": "AUTOGATE_MANAGER_EMF_METRICS",
}

// Bind registers the flags on fs with the current values (after FromEnv)
// as defaults, so flags override the environment.
func (c *Config) Bind(fs *pflag.FlagSet) {
	h := func(name, text string) string { return fmt.Sprintf("%s (env %s)", text, env[name]) }
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, h("data-dir", "directory for the embedded store and TLS files"))
	fs.StringVar(&c.Listen, "listen", c.Listen, h("listen", "address the manager's API and tunnel endpoint listen on"))
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, h("advertise", "this manager's own address, where standby managers forward requests while it is active; never a load balancer's (default: the listen address, with an unspecified host replaced by this host's first non-loopback IPv4)"))
	fs.StringVar(&c.Cluster, "cluster", c.Cluster, h("cluster", "the manager's own namespace in the store (users, tokens, registry, lease); no cluster may use it"))
	fs.StringVar(&c.Node, "node", c.Node, h("node", "this manager's node ID (default: host name and PID)"))
	fs.StringVar(&c.Store, "store", c.Store, h("store", "bolt (embedded) or dynamodb"))
	fs.StringVar(&c.Table, "table", c.Table, h("table", "DynamoDB table (store=dynamodb); may be shared with clusters"))
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, h("tls-cert", "TLS certificate file (default: a self-signed one in the data dir)"))
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, h("tls-key", "TLS private key file"))
	fs.BoolVar(&c.Plaintext, "plaintext", c.Plaintext, h("plaintext", "serve plain HTTP (only behind a TLS-terminating proxy)"))
	fs.StringVar(&c.AdminPassFile, "admin-password-file", c.AdminPassFile, h("admin-password-file", "where the first start writes the admin password (default: DATA_DIR/admin-password)"))
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, h("log-level", "debug, info, warn or error"))
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, h("log-format", "json or text"))
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, h("heartbeat", "tunnel heartbeat period; 2 missed: stale, 4 missed: dropped"))
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, h("request-timeout", "how long a routed request may take (sync runs and waits: their wait + 10s, up to 5m10s)"))
	fs.Int64Var(&c.MaxBodyBytes, "max-body", c.MaxBodyBytes, h("max-body", "largest request body accepted, routed ones included, in bytes"))
	fs.IntVar(&c.MaxFrameBytes, "max-frame", c.MaxFrameBytes, h("max-frame", "largest tunnel frame accepted, in bytes"))
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, h("shutdown-grace", "how long SIGTERM waits for routed requests"))
	fs.DurationVar(&c.LeaseDuration, "lease-duration", c.LeaseDuration, h("lease-duration", "store=dynamodb: how long a standby waits on an unchanged lease before taking over (default 2.4s)"))
	fs.DurationVar(&c.RenewDeadline, "renew-deadline", c.RenewDeadline, h("renew-deadline", "store=dynamodb: the active stops acting this long after its last renewal started (default 2s)"))
	fs.BoolVar(&c.EMFMetrics, "emf-metrics", c.EMFMetrics, h("emf-metrics", "while active, write the Autogate/ActiveHolder CloudWatch metric (Embedded Metric Format) on stdout once a minute"))
	fs.DurationVar(&c.RetryPeriod, "retry-period", c.RetryPeriod, h("retry-period", "store=dynamodb: how often the active renews (default 1.5s)"))
}

// FromEnv applies AUTOGATE_MANAGER_* variables found by lookup.
func (c *Config) FromEnv(lookup func(string) (string, bool)) error {
	var errs []error
	get := func(name string, set func(string) error) {
		if v, ok := lookup(env[name]); ok && v != "" {
			if err := set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env[name], v, err))
			}
		}
	}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	dur := func(p *time.Duration) func(string) error {
		return func(v string) (err error) { *p, err = time.ParseDuration(v); return err }
	}
	for name, p := range map[string]*string{"data-dir": &c.DataDir, "listen": &c.Listen, "advertise": &c.Advertise,
		"cluster": &c.Cluster, "node": &c.Node, "store": &c.Store, "table": &c.Table, "tls-cert": &c.TLSCert,
		"tls-key": &c.TLSKey, "admin-password-file": &c.AdminPassFile, "log-level": &c.LogLevel, "log-format": &c.LogFormat} {
		get(name, str(p))
	}
	for name, p := range map[string]*time.Duration{"heartbeat": &c.Heartbeat, "request-timeout": &c.RequestTimeout,
		"shutdown-grace": &c.ShutdownGrace, "lease-duration": &c.LeaseDuration, "renew-deadline": &c.RenewDeadline,
		"retry-period": &c.RetryPeriod} {
		get(name, dur(p))
	}
	get("plaintext", func(v string) (err error) { c.Plaintext, err = strconv.ParseBool(v); return err })
	get("emf-metrics", func(v string) (err error) { c.EMFMetrics, err = strconv.ParseBool(v); return err })
	get("max-body", func(v string) (err error) { c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64); return err })
	get("max-frame", func(v string) (err error) { c.MaxFrameBytes, err = strconv.Atoi(v); return err })
	return errors.Join(errs...)
}

// Validate names every bad field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, a ...any) {
		errs = append(errs, fmt.Errorf("--%s (%s): %s", flag, env[flag], fmt.Sprintf(format, a...)))
	}
	if err := resource.ValidateCluster(c.Cluster); err != nil {
		bad("cluster", "%v", err)
	}
	if err := resource.ValidateName(c.Node); err != nil || c.Node != strings.ToLower(c.Node) {
		bad("node", "%q: use lower-case letters, digits, '-', '_' and '.'", c.Node)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	switch c.Store {
	case "bolt":
		if c.DataDir == "" {
			bad("data-dir", "required for the embedded store")
		}
	case "dynamodb":
		if c.Table == "" {
			bad("table", "required with --store dynamodb")
		}
	default:
		bad("store", "%q: want bolt or dynamodb", c.Store)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls-cert", "give both --tls-cert and --tls-key, or neither")
	}
	if c.Heartbeat < 50*time.Millisecond || c.Heartbeat > time.Minute {
		bad("heartbeat", "%v: want 50ms..1m", c.Heartbeat)
	}
	if c.RequestTimeout < 100*time.Millisecond || c.RequestTimeout > MaxRequestTimeout {
		bad("request-timeout", "%v: want 100ms..%v", c.RequestTimeout, MaxRequestTimeout)
	}
	if c.MaxFrameBytes < tunnel.MinMaxFrame || c.MaxFrameBytes > 64<<20 {
		bad("max-frame", "%d: want %d..%d", c.MaxFrameBytes, tunnel.MinMaxFrame, 64<<20)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > int64(c.MaxFrameBytes)-64<<10 {
		bad("max-body", "%d: want 1 KiB..(max-frame − 64 KiB) = %d", c.MaxBodyBytes, c.MaxFrameBytes-64<<10)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("log-format", "%q: want json or text", c.LogFormat)
	}
	return errors.Join(errs...)
}
