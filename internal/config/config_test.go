package config

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
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

// The stale threshold lives in internal/execution; the help must not state
// a count of its own that can drift from it (it said 3, the README 6).
func TestHeartbeatHelpStatesNoCount(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	var c Server
	c.Bind(fs)
	f := fs.Lookup("heartbeat")
	if f == nil {
		t.Fatal("no --heartbeat flag")
	}
	if regexp.MustCompile(`\d+ missed`).MatchString(f.Usage) || !strings.Contains(f.Usage, "README") {
		t.Errorf("--heartbeat help %q: want no count of missed heartbeats, and a pointer to the README", f.Usage)
	}
}
