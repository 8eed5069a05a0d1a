package main

import (
	"encoding/base64"
	"encoding/json"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/runner/node"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

var testKey = base64.StdEncoding.EncodeToString(make([]byte, 32))

func baseEnv() map[string]string {
	return map[string]string{
		"AUTOGATE_CLUSTER": "prod", "AUTOGATE_TABLE": "autogate-prod",
		"AUTOGATE_QUEUE_URL":            "https://sqs.eu-west-1.amazonaws.com/1/autogate-prod-work",
		"AUTOGATE_SECRET_KEY_SECRET_ID": "autogate/prod/secret-key",
	}
}

func TestLoadConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, err := loadConfig(env(baseEnv()))
		if err != nil {
			t.Fatal(err)
		}
		if c.Node != "lambda" || c.Margin != 10*time.Second || c.Concurrency != 1 || c.WorkDir != "/tmp/autogate" || c.LogLevel != "info" || c.InLambda {
			t.Errorf("defaults: %+v", c)
		}
	})
	t.Run("everything set", func(t *testing.T) {
		e := baseEnv()
		for k, v := range map[string]string{
			"AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/25/[$LATEST]abc", "AUTOGATE_HANDBACK_MARGIN": "30s",
			"AUTOGATE_LAMBDA_CONCURRENCY": "2", "AUTOGATE_WORK_DIR": "/tmp/x", "AUTOGATE_OUTPUT_LIMIT": "1024",
			"AUTOGATE_PIP_FIND_LINKS": "/a, /b", "AUTOGATE_PIP_NO_INDEX": "true", "AUTOGATE_LOG_LEVEL": "DEBUG",
			"AWS_LAMBDA_FUNCTION_NAME": "runner", "AUTOGATE_DLQ_URL": "https://sqs/dlq",
		} {
			e[k] = v
		}
		c, err := loadConfig(env(e))
		if err != nil {
			t.Fatal(err)
		}
		if c.Node != "2026/11/25/[$LATEST]abc" || c.Margin != 30*time.Second || c.Concurrency != 2 || c.WorkDir != "/tmp/x" ||
			c.OutputLimit != 1024 || !slices.Equal(c.PipFindLinks, []string{"/a", "/b"}) || !c.PipNoIndex || c.LogLevel != "debug" ||
			!c.InLambda || c.DLQURL != "https://sqs/dlq" {
			t.Errorf("config: %+v", c)
		}
	})
	t.Run("AUTOGATE_NODE wins over the log stream", func(t *testing.T) {
		e := baseEnv()
		e["AUTOGATE_NODE"], e["AWS_LAMBDA_LOG_STREAM_NAME"] = "n1", "stream"
		if c, err := loadConfig(env(e)); err != nil || c.Node != "n1" {
			t.Errorf("node %q, %v", c.Node, err)
		}
	})

	tests := []struct {
		name string
		set  map[string]string
		drop []string
		want string // in the error
	}{
		{"no cluster", nil, []string{"AUTOGATE_CLUSTER"}, "AUTOGATE_CLUSTER is required"},
		{"no table", nil, []string{"AUTOGATE_TABLE"}, "AUTOGATE_TABLE is required"},
		{"no queue", nil, []string{"AUTOGATE_QUEUE_URL"}, "AUTOGATE_QUEUE_URL is required"},
		{"no key", nil, []string{"AUTOGATE_SECRET_KEY_SECRET_ID"}, "AUTOGATE_SECRET_KEY_SECRET_ID"},
		{"bad key", map[string]string{"AUTOGATE_SECRET_KEY": "c2hvcnQ="}, nil, "AUTOGATE_SECRET_KEY"},
		{"bad cluster", map[string]string{"AUTOGATE_CLUSTER": "Bad Cluster!"}, nil, "AUTOGATE_CLUSTER"},
		{"bad margin", map[string]string{"AUTOGATE_HANDBACK_MARGIN": "soon"}, nil, "AUTOGATE_HANDBACK_MARGIN"},
		{"zero margin", map[string]string{"AUTOGATE_HANDBACK_MARGIN": "0s"}, nil, "AUTOGATE_HANDBACK_MARGIN"},
		{"concurrency over a batch", map[string]string{"AUTOGATE_LAMBDA_CONCURRENCY": "11"}, nil, "AUTOGATE_LAMBDA_CONCURRENCY"},
		{"relative work dir", map[string]string{"AUTOGATE_WORK_DIR": "work"}, nil, "absolute"},
		{"work dir outside /tmp on Lambda", map[string]string{"AUTOGATE_WORK_DIR": "/var/task/work", "AWS_LAMBDA_FUNCTION_NAME": "f"}, nil, "under /tmp"},
		{"tmp look-alike on Lambda", map[string]string{"AUTOGATE_WORK_DIR": "/tmpfoo", "AWS_LAMBDA_FUNCTION_NAME": "f"}, nil, "under /tmp"},
		{"bad log level", map[string]string{"AUTOGATE_LOG_LEVEL": "loud"}, nil, "AUTOGATE_LOG_LEVEL"},
		{"bad bool", map[string]string{"AUTOGATE_PIP_NO_INDEX": "maybe"}, nil, "AUTOGATE_PIP_NO_INDEX"},
		{"bad retention", map[string]string{"AUTOGATE_RETENTION": "a week"}, nil, "AUTOGATE_RETENTION"},
		{"retention under an hour", map[string]string{"AUTOGATE_RETENTION": "30m"}, nil, "AUTOGATE_RETENTION"},
		{"refresh over an hour", map[string]string{"AUTOGATE_REPO_REFRESH": "2h"}, nil, "AUTOGATE_REPO_REFRESH"},
		{"negative refresh", map[string]string{"AUTOGATE_REPO_REFRESH": "-1s"}, nil, "AUTOGATE_REPO_REFRESH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := baseEnv()
			for _, k := range tt.drop {
				delete(e, k)
			}
			for k, v := range tt.set {
				e[k] = v
			}
			_, err := loadConfig(env(e))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadConfig error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	t.Run("a direct key needs no secret ID", func(t *testing.T) {
		e := baseEnv()
		delete(e, "AUTOGATE_SECRET_KEY_SECRET_ID")
		e["AUTOGATE_SECRET_KEY"] = testKey
		c, err := loadConfig(env(e))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.SecretKey.LogValue().String(); got != "[REDACTED]" {
			t.Errorf("the key logs as %q", got)
		}
	})
}

func TestSecretKeyFromSecretsManager(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		reply   string
		wantErr string
	}{
		{"ok", 200, `{"ARN":"arn","Name":"autogate/prod/secret-key","SecretString":"` + testKey + `\n"}`, ""},
		{"not found", 400, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`, "ResourceNotFoundException"},
		{"binary secret", 200, `{"SecretBinary":"AAAA"}`, "no string value"},
		{"not a key", 200, `{"SecretString":"hunter2!"}`, "secret key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var in map[string]string
				if err := json.Unmarshal(body, &in); err != nil || in["SecretId"] != "autogate/prod/secret-key" {
					t.Errorf("request body %s", body)
				}
				if got := r.Header.Get("X-Amz-Target"); got != "secretsmanager.GetSecretValue" {
					t.Errorf("X-Amz-Target %q", got)
				}
				if got := r.Header.Get("Authorization"); !strings.HasPrefix(got, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(got, "/eu-west-1/secretsmanager/aws4_request") {
					t.Errorf("Authorization %q is not a SigV4 signature for secretsmanager in eu-west-1", got)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.reply)
			}))
			defer srv.Close()
			cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
				BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1}
			sm := secretsmanager.NewFromConfig(cfg)
			c, err := loadConfig(env(baseEnv()))
			if err != nil {
				t.Fatal(err)
			}
			key, err := secretKey(t.Context(), c, sm)
			if tt.wantErr == "" {
				if err != nil || len(key) != 32 {
					t.Errorf("secretKey = %d bytes, %v; want the 32-byte key", len(key), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("secretKey error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error leaks the secret value: %v", err)
			}
		})
	}
	t.Run("direct key skips Secrets Manager", func(t *testing.T) {
		e := baseEnv()
		e["AUTOGATE_SECRET_KEY"] = testKey
		c, err := loadConfig(env(e))
		if err != nil {
			t.Fatal(err)
		}
		if key, err := secretKey(t.Context(), c, nil); err != nil || len(key) != 32 {
			t.Errorf("secretKey = %d bytes, %v", len(key), err)
		}
	})
}

// TestRunnerNodeHonoursRetentionAndRefresh builds the runner node the way
// wire does and checks that AUTOGATE_RETENTION reaches the expiry of a
// recorded execution and AUTOGATE_REPO_REFRESH the git cache; before the
// one runner set-up the Lambda recorded every execution with the 30-day
// default and fetched on every run.
func TestRunnerNodeHonoursRetentionAndRefresh(t *testing.T) {
	tests := []struct {
		name               string
		set                map[string]string
		retention, refresh time.Duration
	}{
		{"defaults", nil, 30 * 24 * time.Hour, 5 * time.Second},
		{"set", map[string]string{"AUTOGATE_RETENTION": "48h", "AUTOGATE_REPO_REFRESH": "1m"}, 48 * time.Hour, time.Minute},
		{"fetch every run", map[string]string{"AUTOGATE_REPO_REFRESH": "0s"}, 30 * 24 * time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := baseEnv()
			e["AUTOGATE_WORK_DIR"] = t.TempDir()
			for k, v := range tt.set {
				e[k] = v
			}
			c, err := loadConfig(env(e))
			if err != nil {
				t.Fatal(err)
			}
			st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), clock.Real{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			kr, err := secret.NewKeyring(make([]byte, 32))
			if err != nil {
				t.Fatal(err)
			}
			nc := c.node()
			nc.Store, nc.Keyring, nc.Source = st, kr, queue.NewLocal()
			n, err := node.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if n.Repos.Refresh != tt.refresh {
				t.Errorf("git cache refresh: got %v want %v", n.Repos.Refresh, tt.refresh)
			}
			now := time.Now().UTC()
			x := &execution.Execution{ID: execution.NewID(now), Cluster: c.Cluster, Service: "s", Status: execution.Queued, CreatedAt: now,
				Spec: &resource.Service{Meta: resource.Meta{Name: "s"}, Type: resource.Executable, Repository: "r", Filename: "x"}}
			if err := n.Catalog.CreateExecution(t.Context(), x); err != nil {
				t.Fatal(err)
			}
			recs, _, err := st.List(t.Context(), c.Cluster, resource.KindExecution, store.ListOptions{})
			if err != nil || len(recs) != 1 {
				t.Fatalf("stored executions: %d, %v", len(recs), err)
			}
			if got, want := recs[0].ExpiresAt, now.Add(tt.retention); !got.Equal(want) {
				t.Errorf("execution expiry: got %v want %v", got, want)
			}
		})
	}
}
