package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/autogate/autogate/internal/execution"
)

func TestPrecedence(t *testing.T) {
	c := DefaultServer()
	envs := map[string]string{"AUTOGATE_LISTEN": "127.0.0.1:9000", "AUTOGATE_CLUSTER": "eu-1", "AUTOGATE_RETENTION": "48h"}
	if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse([]string{"--cluster", "us-1"}); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.Cluster != "us-1" || c.Retention != 48*time.Hour || c.Store != "bolt" {
		t.Errorf("got listen %s cluster %s retention %v store %s; want env listen, flag cluster, env retention, default store",
			c.Listen, c.Cluster, c.Retention, c.Store)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestKMSFromEnvAndFlag(t *testing.T) {
	c := DefaultServer()
	envs := map[string]string{"AUTOGATE_KMS_KEY_ID": "alias/env", "AUTOGATE_KMS_CACHE_TTL": "30s"}
	if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.Bind(fs, RunnerFlags...)
	if err := fs.Parse([]string{"--kms-key-id", "alias/flag"}); err != nil {
		t.Fatal(err)
	}
	if c.KMSKeyID != "alias/flag" || c.KMSCacheTTL != 30*time.Second {
		t.Errorf("got key %q ttl %v; want the flag's key and the env's 30s", c.KMSKeyID, c.KMSCacheTTL)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Server)
		want   string
	}{
		{"bad cluster", func(c *Server) { c.Cluster = "EU_1" }, "--cluster"},
		{"bad store", func(c *Server) { c.Store = "etcd" }, "--store"},
		{"dynamodb without table", func(c *Server) { c.Store = "dynamodb" }, "--table"},
		{"half TLS", func(c *Server) { c.TLSCert = "c.pem" }, "--tls-cert"},
		{"bad listen", func(c *Server) { c.Listen = "8443" }, "--listen"},
		{"zero concurrency", func(c *Server) { c.Concurrency = 0 }, "--concurrency"},
		{"bad execution", func(c *Server) { c.Execution = "remote" }, "--execution"},
		{"node with slash", func(c *Server) { c.Node = "a/b" }, "--node"},
		{"bad manager URL", func(c *Server) { c.ManagerURLs = []string{"ws://m"} }, "--manager-url"},
		{"manager credential without a URL", func(c *Server) { c.ManagerCredentialFile = "c" }, "--manager-url"},
		{"start window too short", func(c *Server) { c.StartWindow = time.Second }, "--start-window"},
		{"no backlog", func(c *Server) { c.MaxBacklog = 0 }, "--max-backlog"},
		{"sweep interval zero", func(c *Server) { c.SweepInterval = 0 }, "--sweep-interval"},
		{"max service timeout over 12h", func(c *Server) { c.MaxServiceTimeout = 13 * time.Hour }, "--max-service-timeout"},
		{"manager URL without a credential", func(c *Server) { c.ManagerURLs = []string{"https://m:9443"} }, "AUTOGATE_MANAGER_CREDENTIAL"},
		{"KMS cache TTL too long", func(c *Server) { c.KMSCacheTTL = 2 * time.Hour }, "--kms-cache-ttl"},
		{"KMS cache TTL zero", func(c *Server) { c.KMSCacheTTL = 0 }, "--kms-cache-ttl"},
		{"KMS key ID with spaces", func(c *Server) { c.KMSKeyID = " alias/x" }, "--kms-key-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultServer()
			c.Node = "n1"
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestBadEnv(t *testing.T) {
	c := DefaultServer()
	err := c.FromEnv(func(k string) (string, bool) {
		if k == "AUTOGATE_RUNNER_CONCURRENCY" {
			return "lots", true
		}
		return "", false
	})
	if err == nil || !strings.Contains(err.Error(), "AUTOGATE_RUNNER_CONCURRENCY") {
		t.Errorf("FromEnv = %v, want an error naming the variable", err)
	}
}

func TestStartWindowAndSweepSettings(t *testing.T) {
	c := DefaultServer()
	if c.StartWindow != 30*time.Minute || c.SweepInterval != 30*time.Second {
		t.Fatalf("defaults: start window %v, sweep interval %v", c.StartWindow, c.SweepInterval)
	}
	envs := map[string]string{"AUTOGATE_START_WINDOW": "5m", "AUTOGATE_SWEEP_INTERVAL": "2s"}
	if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse([]string{"--sweep-interval", "1s"}); err != nil {
		t.Fatal(err)
	}
	if c.StartWindow != 5*time.Minute || c.SweepInterval != time.Second {
		t.Errorf("start window %v (want env 5m), sweep interval %v (want flag 1s)", c.StartWindow, c.SweepInterval)
	}
}

func TestMaxBacklogSetting(t *testing.T) {
	c := DefaultServer()
	if c.MaxBacklog != DefaultMaxBacklog {
		t.Fatalf("default max backlog %d, want %d", c.MaxBacklog, DefaultMaxBacklog)
	}
	envs := map[string]string{"AUTOGATE_MAX_BACKLOG": "64"}
	if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil || c.MaxBacklog != 64 {
		t.Fatalf("from env: %d, %v; want 64", c.MaxBacklog, err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse([]string{"--max-backlog", "10"}); err != nil || c.MaxBacklog != 10 {
		t.Errorf("flag: %d, %v; want 10", c.MaxBacklog, err)
	}
}

func TestMaxServiceTimeoutFromEnv(t *testing.T) {
	c := DefaultServer()
	envs := map[string]string{"AUTOGATE_MAX_SERVICE_TIMEOUT": "15m0s"} // as the CDK stacks write it
	if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.MaxServiceTimeout != 15*time.Minute {
		t.Errorf("MaxServiceTimeout = %v, want 15m", c.MaxServiceTimeout)
	}
}

// TestShutdownGraceFromEnv: the runner and the gateway take the grace the
// CDK stacks derive from the stop timeout (written as Go formats it).
func TestShutdownGraceFromEnv(t *testing.T) {
	for _, only := range [][]string{RunnerFlags, nil} {
		c := DefaultServer()
		envs := map[string]string{"AUTOGATE_SHUTDOWN_GRACE": "1m30s"}
		if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil {
			t.Fatal(err)
		}
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		c.Bind(fs, only...)
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		if c.ShutdownGrace != 90*time.Second {
			t.Errorf("flags %v: ShutdownGrace = %v, want 1m30s from AUTOGATE_SHUTDOWN_GRACE", only, c.ShutdownGrace)
		}
	}
}

// TestManagerCredentialFromEnv: the credential ECS injects as
// AUTOGATE_MANAGER_CREDENTIAL satisfies --manager-url, and never prints.
func TestManagerCredentialFromEnv(t *testing.T) {
	const cred = "agc_eu-1_s3cr3t"
	c := DefaultServer()
	c.Node = "n1"
	envs := map[string]string{"AUTOGATE_MANAGER_URL": "https://m.example.com", ManagerCredentialEnv: " " + cred + "\n"}
	if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if string(c.ManagerCredential) != cred {
		t.Errorf("credential: got %d bytes, want the trimmed value", len(c.ManagerCredential))
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	for _, out := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(out, cred) {
			t.Errorf("the credential is printed: %s", out)
		}
	}
}

// The stale threshold lives in internal/execution; the --heartbeat help
// (shared by `autogate server` and `autogate runner`) states the count from
// there, and so does every count the README gives (the help once said 3
// where the README said 6).
func TestHeartbeatHelpAgreesWithREADME(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	var c Server
	c.Bind(fs)
	f := fs.Lookup("heartbeat")
	if f == nil {
		t.Fatal("no --heartbeat flag")
	}
	want := fmt.Sprintf("%d heartbeats", execution.StaleHeartbeats)
	if !strings.Contains(f.Usage, want) || !strings.Contains(f.Usage, "README") {
		t.Errorf("--heartbeat help %q: want %q and a pointer to the README", f.Usage, want)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	counts := regexp.MustCompile(`(\d+) heartbeat(s|\s+periods)\b`).FindAllStringSubmatch(string(readme), -1)
	if len(counts) == 0 {
		t.Fatal("the README states no count of heartbeats after which a run is stale")
	}
	for _, m := range counts {
		if m[1] != strconv.Itoa(execution.StaleHeartbeats) {
			t.Errorf("README says %q; the stale-after policy is %d heartbeats", m[0], execution.StaleHeartbeats)
		}
	}
}

// The heartbeat's default is the one in internal/execution, and the
// reconciler's help no longer limits it to execution=queue: it runs in every
// execution mode.
func TestHeartbeatDefaultAndSweepHelp(t *testing.T) {
	if got := DefaultServer().Heartbeat; got != execution.DefaultHeartbeat {
		t.Errorf("default heartbeat: got %v, want execution.DefaultHeartbeat %v", got, execution.DefaultHeartbeat)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c := DefaultServer()
	c.Bind(fs)
	if got := fs.Lookup("heartbeat").DefValue; got != execution.DefaultHeartbeat.String() {
		t.Errorf("--heartbeat default shown: got %s, want %v", got, execution.DefaultHeartbeat)
	}
	u := fs.Lookup("sweep-interval").Usage
	if strings.Contains(u, "execution=queue") || !strings.Contains(u, "every execution mode") {
		t.Errorf("--sweep-interval help %q: want it to say it runs in every execution mode", u)
	}
}

// --emf-metrics is off by default, on from AUTOGATE_EMF_METRICS, and a
// flag overrides the environment; a bad value names the variable.
func TestEMFMetricsSetting(t *testing.T) {
	c := DefaultServer()
	if c.EMFMetrics {
		t.Fatal("EMF metrics on by default")
	}
	envs := map[string]string{"AUTOGATE_EMF_METRICS": "true"}
	if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil || !c.EMFMetrics {
		t.Fatalf("from env: %v, %v; want true", c.EMFMetrics, err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse([]string{"--emf-metrics=false"}); err != nil || c.EMFMetrics {
		t.Errorf("flag: %v, %v; want false", c.EMFMetrics, err)
	}
	bad := DefaultServer()
	err := bad.FromEnv(func(k string) (string, bool) { return "yes please", k == "AUTOGATE_EMF_METRICS" })
	if err == nil || !strings.Contains(err.Error(), "AUTOGATE_EMF_METRICS") {
		t.Errorf("bad value: %v, want an error naming AUTOGATE_EMF_METRICS", err)
	}
}
