// Package config holds the configuration of the autogate server: defaults,
// then AUTOGATE_* environment variables, then command-line flags, in that
// order of precedence, then Validate. Secrets (the secret key) are read from
// the environment or files, never taken as flags.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
)

// Server configures `autogate server`.
type Server struct {
	DataDir string
	// RunDir is where each run's private directory is made; empty: the
	// executor's default (executor.DefaultWorkRoot: /dev/shm when it is a
	// roomy tmpfs, else DATA_DIR/work).
	RunDir        string
	Listen        string
	Advertise     string
	Cluster       string
	Node          string
	Store         string // bolt or dynamodb
	Table         string
	Execution     string // local or queue
	TLSCert       string
	TLSKey        string
	Plaintext     bool
	Concurrency   int
	Retention     time.Duration
	OutputLimit   int
	MaxBodyBytes  int64
	PipIndexURL   string
	PipFindLinks  []string
	PipNoIndex    bool
	AdminPassFile string
	LogLevel      string
	LogFormat     string
	ShutdownGrace time.Duration
	RepoRefresh   time.Duration
	// QueueURL and DLQURL are the cluster's SQS work queue and its
	// dead-letter queue (execution=queue, and runners).
	QueueURL string
	DLQURL   string
	// Heartbeat is how often a runner proves it still runs an execution
	// (default execution.DefaultHeartbeat, 5 s); a running record
	// execution.StaleHeartbeats (3) heartbeats old is declared lost.
	Heartbeat time.Duration
	// StartWindow is how long an accepted run may wait for a runner to
	// start it (its message re-sent whenever it is presumed lost) before it
	// is failed unstarted; separate from the service's run timeout.
	StartWindow time.Duration
	// MaxBacklog is how many accepted, unfinished runs the cluster holds
	// before a submission is refused with 429 and Retry-After: the local
	// queue's waiting runs in all-in-one execution, the cluster's open
	// (queued or running) runs with runners.
	MaxBacklog int
	// SweepInterval is how often the active gateway's reconciler runs, in
	// every execution mode (it also wakes when the earliest running attempt
	// turns stale).
	SweepInterval time.Duration
	// MetricsListen is where a runner serves /metrics ("" turns it off).
	MetricsListen string
	// EMFMetrics makes the lease holder write the Autogate/ActiveHolder
	// CloudWatch metric as an Embedded Metric Format line on stdout, at
	// term start and once a minute (default off; the CDK stacks turn it on
	// for their "no active gateway" alarm).
	EMFMetrics bool
	// Lease timing (store=dynamodb); zero takes the lease package defaults.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// ManagerURLs are the Gateway Manager's addresses; while active, the
	// gateway keeps a tunnel to it. Empty: no manager.
	ManagerURLs []string
	// ManagerCredentialFile holds the cluster's credential (else it comes
	// from AUTOGATE_MANAGER_CREDENTIAL; never from a flag).
	ManagerCredentialFile string
	// ManagerCredential is the cluster's credential from
	// AUTOGATE_MANAGER_CREDENTIAL (how ECS injects a Secrets Manager
	// secret). It has no flag and never prints itself.
	ManagerCredential secret.Value
	// ManagerCAFile is a PEM bundle to trust for the manager's certificate.
	ManagerCAFile string
	// KMSKeyID, when set, is the AWS KMS key (ID, ARN or alias) that wraps
	// the cluster's stored-secret data keys (envelope encryption); else the
	// legacy key (AUTOGATE_SECRET_KEY or DATA_DIR/secret.key) seals them.
	KMSKeyID string
	// KMSCacheTTL bounds how long a plaintext data key stays in memory
	// (default 5m); it is also how long a rotation takes to reach sealing.
	KMSCacheTTL time.Duration
	// MaxServiceTimeout is the longest timeout a service of this cluster
	// may declare (the CDK stacks set it to what their runners allow, e.g.
	// a Lambda runner's 15 minutes); 0 means no limit beyond the 12 h every
	// service has.
	MaxServiceTimeout time.Duration
}

// DefaultDataDir is where the embedded store lives unless told otherwise:
// $XDG_DATA_HOME/autogate, else ~/.local/share/autogate.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "autogate")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "autogate")
	}
	return "autogate-data"
}

// DefaultServer returns the defaults: an all-in-one node on the embedded
// store, TLS on 127.0.0.1:8443 with a self-signed certificate.
func DefaultServer() Server {
	host, _ := os.Hostname() // an empty host name still yields a usable node ID
	return Server{
		DataDir: DefaultDataDir(), Listen: "127.0.0.1:8443", Cluster: "default",
		Node:  fmt.Sprintf("%s-%d", strings.ToLower(firstLabel(host)), os.Getpid()),
		Store: "bolt", Execution: "local", Concurrency: 4, Retention: DefaultRetention,
		OutputLimit: 64 << 10, MaxBodyBytes: 1 << 20, LogLevel: "info", LogFormat: "json",
		ShutdownGrace: 30 * time.Second, RepoRefresh: DefaultRepoRefresh, Heartbeat: execution.DefaultHeartbeat,
		StartWindow: 30 * time.Minute, SweepInterval: 30 * time.Second, KMSCacheTTL: 5 * time.Minute,
		MaxBacklog: DefaultMaxBacklog,
	}
}

// Defaults shared by every runner (the gateway's, the ECS and the Lambda
// runner), so their executions expire and their checkouts refresh alike.
const (
	// DefaultRetention is how long executions are kept.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultRepoRefresh is how long a branch's resolved commit is reused.
	DefaultRepoRefresh = 5 * time.Second
)

// DefaultMaxBacklog is the admission limit by default (--max-backlog): with
// no-op runs an all-in-one gateway on a 2-core machine finishes about 600
// a second and a distributed cluster with two runners about 100, so a full
// backlog is seconds of work, not the minutes an unbounded one grew to.
const DefaultMaxBacklog = 1000

// CheckRetention holds an execution retention to its range (at least 1h).
func CheckRetention(d time.Duration) error {
	if d < time.Hour {
		return fmt.Errorf("%v: want at least 1h", d)
	}
	return nil
}

// CheckRepoRefresh holds a repository refresh window to its range (0..1h).
func CheckRepoRefresh(d time.Duration) error {
	if d < 0 || d > time.Hour {
		return fmt.Errorf("%v: want 0..1h", d)
	}
	return nil
}

func firstLabel(h string) string {
	h, _, _ = strings.Cut(h, ".")
	if h == "" {
		return "node"
	}
	return h
}

// env lists each setting's environment variable, used for binding and help.
var env = map[string]string{
	"data-dir": "AUTOGATE_DATA_DIR", "listen": "AUTOGATE_LISTEN", "advertise": "AUTOGATE_ADVERTISE_ADDR",
	"cluster": "AUTOGATE_CLUSTER", "node": "AUTOGATE_NODE", "store": "AUTOGATE_STORE", "table": "AUTOGATE_TABLE",
	"execution": "AUTOGATE_EXECUTION", "tls-cert": "AUTOGATE_TLS_CERT", "tls-key": "AUTOGATE_TLS_KEY",
	"plaintext": "AUTOGATE_PLAINTEXT", "concurrency": "AUTOGATE_RUNNER_CONCURRENCY", "retention": "AUTOGATE_RETENTION",
	"output-limit": "AUTOGATE_OUTPUT_LIMIT", "max-body": "AUTOGATE_MAX_BODY", "pip-index-url": "AUTOGATE_PIP_INDEX_URL",
	"pip-find-links": "AUTOGATE_PIP_FIND_LINKS", "pip-no-index": "AUTOGATE_PIP_NO_INDEX",
	"admin-password-file": "AUTOGATE_ADMIN_PASSWORD_FILE", "log-level": "AUTOGATE_LOG_LEVEL",
	"log-format": "AUTOGATE_LOG_FORMAT", "shutdown-grace": "AUTOGATE_SHUTDOWN_GRACE",
	"repo-refresh": "AUTOGATE_REPO_REFRESH", "lease-duration": "AUTOGATE_LEASE_DURATION",
	"renew-deadline": "AUTOGATE_RENEW_DEADLINE", "retry-period": "AUTOGATE_RETRY_PERIOD",
	"queue-url": "AUTOGATE_QUEUE_URL", "heartbeat": "AUTOGATE_RUNNER_HEARTBEAT", "dlq-url": "AUTOGATE_DLQ_URL", "metrics-listen": "AUTOGATE_METRICS_LISTEN",
	"emf-metrics": "AUTOGATE_EMF_METRICS",
	"manager-url": "AUTOGATE_MANAGER_URL", "manager-credential-file": "AUTOGATE_MANAGER_CREDENTIAL_FILE",
	"manager-ca-file": "AUTOGATE_MANAGER_CA_FILE", "start-window": "AUTOGATE_START_WINDOW",
	"sweep-interval":      "AUTOGATE_SWEEP_INTERVAL",
	"max-backlog":         "AUTOGATE_MAX_BACKLOG",
	"run-dir":             "AUTOGATE_RUN_DIR",
	"max-service-timeout": "AUTOGATE_MAX_SERVICE_TIMEOUT",
	"kms-key-id":          "AUTOGATE_KMS_KEY_ID", "kms-cache-ttl": "AUTOGATE_KMS_CACHE_TTL",
	// Environment only, a secret: no flag.
	"manager-credential": ManagerCredentialEnv,
}

// ManagerCredentialEnv carries the cluster's manager credential.
const ManagerCredentialEnv = "AUTOGATE_MANAGER_CREDENTIAL"

// RunnerFlags are the settings `autogate runner` takes; the rest are the
// gateway's.
var RunnerFlags = []string{"data-dir", "run-dir", "cluster", "node", "store", "table", "queue-url", "concurrency",
	"output-limit", "pip-index-url", "pip-find-links", "pip-no-index", "repo-refresh", "log-level",
	"log-format", "shutdown-grace", "metrics-listen", "heartbeat", "retention", "kms-key-id", "kms-cache-ttl"}

// Bind registers flags on fs (all of them, or only those named), with
// defaults taken from c after the environment has been applied, so flags
// override the environment.
func (c *Server) Bind(fs *pflag.FlagSet, only ...string) {
	all := pflag.NewFlagSet("all", pflag.ContinueOnError)
	c.bindAll(all)
	all.VisitAll(func(f *pflag.Flag) {
		if len(only) == 0 || slices.Contains(only, f.Name) {
			fs.AddFlag(f)
		}
	})
}

func (c *Server) bindAll(fs *pflag.FlagSet) {
	h := func(name, text string) string { return fmt.Sprintf("%s (env %s)", text, env[name]) }
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, h("data-dir", "directory for the embedded store, keys, TLS files and caches"))
	fs.StringVar(&c.RunDir, "run-dir", c.RunDir, h("run-dir", "where each run gets its private directory (a copy of the service's source, its inputs and secret files), removed after the run (default: /dev/shm/autogate-UID when /dev/shm is a tmpfs with 1 GiB free, so secret files stay in memory (swap aside); else DATA_DIR/work; opentofu-plan runs use DATA_DIR/work unless this is set, since tofu init downloads providers)"))
	fs.StringVar(&c.Listen, "listen", c.Listen, h("listen", "address the API listens on"))
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, h("advertise", "this node's own address, where standbys forward API requests while it is active; never a load balancer's (default: the listen address, with an unspecified host replaced by this host's first non-loopback IPv4)"))
	fs.StringVar(&c.Cluster, "cluster", c.Cluster, h("cluster", "cluster ID; namespaces every resource"))
	fs.StringVar(&c.Node, "node", c.Node, h("node", "this node's ID (default: host name and PID)"))
	fs.StringVar(&c.Store, "store", c.Store, h("store", "resource store: bolt (embedded) or dynamodb"))
	fs.StringVar(&c.Table, "table", c.Table, h("table", "DynamoDB table name (store=dynamodb)"))
	fs.StringVar(&c.Execution, "execution", c.Execution, h("execution", "where services run: local (in this process) or queue (SQS runners)"))
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, h("tls-cert", "TLS certificate file (default: a self-signed one in the data dir)"))
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, h("tls-key", "TLS private key file"))
	fs.BoolVar(&c.Plaintext, "plaintext", c.Plaintext, h("plaintext", "serve plain HTTP (only behind a TLS-terminating proxy)"))
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, h("concurrency", "services run at once in local execution"))
	fs.DurationVar(&c.Retention, "retention", c.Retention, h("retention", "how long executions are kept"))
	fs.IntVar(&c.OutputLimit, "output-limit", c.OutputLimit, h("output-limit", "bytes of stdout and of stderr kept per execution"))
	fs.Int64Var(&c.MaxBodyBytes, "max-body", c.MaxBodyBytes, h("max-body", "largest request body accepted, in bytes"))
	fs.StringVar(&c.PipIndexURL, "pip-index-url", c.PipIndexURL, h("pip-index-url", "Python package index for service requirements"))
	fs.StringSliceVar(&c.PipFindLinks, "pip-find-links", c.PipFindLinks, h("pip-find-links", "local wheel directories for service requirements"))
	fs.BoolVar(&c.PipNoIndex, "pip-no-index", c.PipNoIndex, h("pip-no-index", "install requirements from --pip-find-links only"))
	fs.StringVar(&c.AdminPassFile, "admin-password-file", c.AdminPassFile, h("admin-password-file", "where the first start writes the admin password (default: DATA_DIR/admin-password)"))
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, h("log-level", "debug, info, warn or error"))
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, h("log-format", "json or text"))
	fs.DurationVar(&c.RepoRefresh, "repo-refresh", c.RepoRefresh, h("repo-refresh", "reuse a branch's resolved commit this long before fetching again (0: fetch every run)"))
	fs.DurationVar(&c.LeaseDuration, "lease-duration", c.LeaseDuration, h("lease-duration", "store=dynamodb: how long a standby waits on an unchanged lease before taking over (default 2.4s)"))
	fs.DurationVar(&c.RenewDeadline, "renew-deadline", c.RenewDeadline, h("renew-deadline", "store=dynamodb: the active stops acting this long after its last successful renewal started (default 2s)"))
	fs.DurationVar(&c.RetryPeriod, "retry-period", c.RetryPeriod, h("retry-period", "store=dynamodb: how often the active renews (default 1.5s)"))
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, h("shutdown-grace", "how long SIGTERM waits for running services"))
	fs.StringVar(&c.QueueURL, "queue-url", c.QueueURL, h("queue-url", "the cluster's SQS work queue (execution=queue, runners)"))
	fs.StringVar(&c.DLQURL, "dlq-url", c.DLQURL, h("dlq-url", "the work queue's dead-letter queue, for redrive"))
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, h("heartbeat", fmt.Sprintf("how often a running execution's record and message are refreshed; a run whose record goes %d heartbeats without one is stale and is marked lost (re-queued if retryable) (README: Distributed execution)", execution.StaleHeartbeats)))
	fs.IntVar(&c.MaxBacklog, "max-backlog", c.MaxBacklog, h("max-backlog", "accepted, unfinished runs (local: waiting in the queue; queue: open in the cluster) beyond which a submission gets 429 with Retry-After and records nothing"))
	fs.DurationVar(&c.StartWindow, "start-window", c.StartWindow, h("start-window", "how long an accepted run may wait for a runner to start it before it fails unstarted (its message is re-sent whenever presumed lost)"))
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, h("sweep-interval", "how often the active gateway's reconciler runs, in every execution mode: it re-sends queued runs whose message is presumed lost, fails those past their start-by time and marks stale running ones lost (it also wakes when the earliest running run turns stale)"))
	fs.StringSliceVar(&c.ManagerURLs, "manager-url", c.ManagerURLs, h("manager-url", "Gateway Manager URL(s), comma-separated: the active gateway keeps a tunnel to it"))
	fs.StringVar(&c.ManagerCredentialFile, "manager-credential-file", c.ManagerCredentialFile, h("manager-credential-file", "file holding the cluster's manager credential (or set AUTOGATE_MANAGER_CREDENTIAL)"))
	fs.StringVar(&c.ManagerCAFile, "manager-ca-file", c.ManagerCAFile, h("manager-ca-file", "PEM certificate(s) to trust for the manager"))
	fs.DurationVar(&c.MaxServiceTimeout, "max-service-timeout", c.MaxServiceTimeout, h("max-service-timeout", "longest timeout a service may declare; longer ones are refused (0: 12h, the absolute maximum)"))
	fs.StringVar(&c.KMSKeyID, "kms-key-id", c.KMSKeyID, h("kms-key-id", "AWS KMS key (ID, ARN or alias) wrapping the stored-secret data keys (empty: the legacy secret key)"))
	fs.DurationVar(&c.KMSCacheTTL, "kms-cache-ttl", c.KMSCacheTTL, h("kms-cache-ttl", "how long an unwrapped data key stays in memory before KMS is asked again"))
	fs.BoolVar(&c.EMFMetrics, "emf-metrics", c.EMFMetrics, h("emf-metrics", "while active, write the Autogate/ActiveHolder CloudWatch metric (Embedded Metric Format) on stdout once a minute"))
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, h("metrics-listen", "runner: address to serve /metrics on (empty: off)"))
}

// FromEnv applies AUTOGATE_* variables found by lookup (os.LookupEnv).
func (c *Server) FromEnv(lookup func(string) (string, bool)) error {
	var errs []error
	get := func(name string, set func(string) error) {
		if v, ok := lookup(env[name]); ok && v != "" {
			if err := set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env[name], v, err))
			}
		}
	}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	boolean := func(p *bool) func(string) error {
		return func(v string) (err error) { *p, err = strconv.ParseBool(v); return err }
	}
	integer := func(p *int) func(string) error {
		return func(v string) (err error) { *p, err = strconv.Atoi(v); return err }
	}
	dur := func(p *time.Duration) func(string) error {
		return func(v string) (err error) { *p, err = time.ParseDuration(v); return err }
	}
	get("data-dir", str(&c.DataDir))
	get("run-dir", str(&c.RunDir))
	get("listen", str(&c.Listen))
	get("advertise", str(&c.Advertise))
	get("cluster", str(&c.Cluster))
	get("node", str(&c.Node))
	get("store", str(&c.Store))
	get("table", str(&c.Table))
	get("execution", str(&c.Execution))
	get("tls-cert", str(&c.TLSCert))
	get("tls-key", str(&c.TLSKey))
	get("plaintext", boolean(&c.Plaintext))
	get("concurrency", integer(&c.Concurrency))
	get("retention", dur(&c.Retention))
	get("output-limit", integer(&c.OutputLimit))
	get("max-body", func(v string) (err error) { c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64); return err })
	get("pip-index-url", str(&c.PipIndexURL))
	get("pip-find-links", func(v string) error { c.PipFindLinks = strings.Split(v, ","); return nil })
	get("pip-no-index", boolean(&c.PipNoIndex))
	get("admin-password-file", str(&c.AdminPassFile))
	get("log-level", str(&c.LogLevel))
	get("log-format", str(&c.LogFormat))
	get("shutdown-grace", dur(&c.ShutdownGrace))
	get("repo-refresh", dur(&c.RepoRefresh))
	get("lease-duration", dur(&c.LeaseDuration))
	get("queue-url", str(&c.QueueURL))
	get("dlq-url", str(&c.DLQURL))
	get("metrics-listen", str(&c.MetricsListen))
	get("emf-metrics", boolean(&c.EMFMetrics))
	get("manager-url", func(v string) error { c.ManagerURLs = strings.Split(v, ","); return nil })
	get("manager-credential-file", str(&c.ManagerCredentialFile))
	get("manager-ca-file", str(&c.ManagerCAFile))
	// Not through get: its error would quote the value.
	if v, ok := lookup(ManagerCredentialEnv); ok && strings.TrimSpace(v) != "" {
		c.ManagerCredential = secret.Value(strings.TrimSpace(v))
	}
	get("heartbeat", dur(&c.Heartbeat))
	get("start-window", dur(&c.StartWindow))
	get("max-backlog", integer(&c.MaxBacklog))
	get("sweep-interval", dur(&c.SweepInterval))
	get("max-service-timeout", dur(&c.MaxServiceTimeout))
	get("renew-deadline", dur(&c.RenewDeadline))
	get("retry-period", dur(&c.RetryPeriod))
	get("kms-key-id", str(&c.KMSKeyID))
	get("kms-cache-ttl", dur(&c.KMSCacheTTL))
	return errors.Join(errs...)
}

// ValidateRunner checks the settings of `autogate runner`: it always works
// on DynamoDB and SQS.
func (c *Server) ValidateRunner() error {
	var errs []error
	if c.Store != "dynamodb" {
		errs = append(errs, fmt.Errorf("--store (%s): runners need dynamodb", env["store"]))
	}
	if c.QueueURL == "" {
		errs = append(errs, fmt.Errorf("--queue-url (%s): required", env["queue-url"]))
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate checks the whole configuration and names every bad field.
func (c *Server) Validate() error {
	var errs []error
	bad := func(flag, format string, a ...any) {
		errs = append(errs, fmt.Errorf("--%s (%s): %s", flag, env[flag], fmt.Sprintf(format, a...)))
	}
	if err := resource.ValidateCluster(c.Cluster); err != nil {
		bad("cluster", "%v", err)
	}
	if err := resource.ValidateName(strings.ToLower(c.Node)); err != nil || c.Node != strings.ToLower(c.Node) {
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
	switch c.Execution {
	case "local":
	case "queue":
		if c.Store != "dynamodb" {
			bad("execution", "queue needs --store dynamodb: runners cannot reach an embedded store")
		}
		if c.QueueURL == "" {
			bad("queue-url", "required with --execution queue")
		}
	default:
		bad("execution", "%q: want local or queue", c.Execution)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls-cert", "give both --tls-cert and --tls-key, or neither")
	}
	if c.RunDir != "" && !filepath.IsAbs(c.RunDir) {
		bad("run-dir", "%q: want an absolute path", c.RunDir)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		bad("concurrency", "%d: want 1..1024", c.Concurrency)
	}
	if err := CheckRetention(c.Retention); err != nil {
		bad("retention", "%v", err)
	}
	if c.OutputLimit < 1024 || c.OutputLimit > 4<<20 {
		bad("output-limit", "%d: want 1 KiB..4 MiB", c.OutputLimit)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		bad("max-body", "%d: want 1 KiB..64 MiB", c.MaxBodyBytes)
	}
	if c.Heartbeat < 100*time.Millisecond || c.Heartbeat > 5*time.Minute {
		bad("heartbeat", "%v: want 100ms..5m", c.Heartbeat)
	}
	if c.MaxBacklog < 1 || c.MaxBacklog > 1_000_000 {
		bad("max-backlog", "%d: want 1..1000000", c.MaxBacklog)
	}
	if c.StartWindow < time.Minute || c.StartWindow > 24*time.Hour {
		bad("start-window", "%v: want 1m..24h", c.StartWindow)
	}
	if c.SweepInterval < 100*time.Millisecond || c.SweepInterval > 10*time.Minute {
		bad("sweep-interval", "%v: want 100ms..10m", c.SweepInterval)
	}
	if c.MaxServiceTimeout < 0 || c.MaxServiceTimeout > resource.MaxServiceTimeout ||
		(c.MaxServiceTimeout > 0 && c.MaxServiceTimeout < time.Second) {
		bad("max-service-timeout", "%v: want 0 (no limit) or 1s..%v", c.MaxServiceTimeout, resource.MaxServiceTimeout)
	}
	if err := CheckRepoRefresh(c.RepoRefresh); err != nil {
		bad("repo-refresh", "%v", err)
	}
	for _, u := range c.ManagerURLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			bad("manager-url", "%q: want https://host:port", u)
		}
	}
	if len(c.ManagerURLs) == 0 && (c.ManagerCredentialFile != "" || c.ManagerCAFile != "") {
		bad("manager-url", "required with --manager-credential-file or --manager-ca-file")
	}
	if len(c.ManagerURLs) > 0 && c.ManagerCredentialFile == "" && len(c.ManagerCredential) == 0 {
		bad("manager-credential-file", "required with --manager-url (or set AUTOGATE_MANAGER_CREDENTIAL)")
	}
	if c.KMSCacheTTL < time.Second || c.KMSCacheTTL > time.Hour {
		bad("kms-cache-ttl", "%v: want 1s..1h", c.KMSCacheTTL)
	}
	if strings.TrimSpace(c.KMSKeyID) != c.KMSKeyID {
		bad("kms-key-id", "%q: leading or trailing space", c.KMSKeyID)
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
