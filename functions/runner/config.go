package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/autogate/autogate/functions/runner/handler"
	autogateconfig "github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/runner/node"
)

// config is the Lambda runner's configuration: defaults, then the
// environment (a Lambda function has no flags), then validate.
type config struct {
	Cluster  string
	Table    string
	QueueURL string
	DLQURL   string
	// SecretKey is AUTOGATE_SECRET_KEY (base64), if set; else the key is
	// fetched from Secrets Manager at start-up by SecretKeySecretID.
	SecretKey         secret.Value
	SecretKeySecretID string
	Node              string
	Margin            time.Duration
	Concurrency       int
	WorkDir           string
	OutputLimit       int
	PipIndexURL       string
	PipFindLinks      []string
	PipNoIndex        bool
	// Retention is how long recorded executions are kept
	// (AUTOGATE_RETENTION, as on the gateways and the ECS runners).
	Retention time.Duration
	// RepoRefresh is how long a branch's resolved commit is reused before
	// fetching again (AUTOGATE_REPO_REFRESH; 0 fetches on every run).
	RepoRefresh time.Duration
	LogLevel    string
	// KMSKeyID (AUTOGATE_KMS_KEY_ID), when set, opens secrets through the
	// cluster's KMS keyring; the secret key above is then optional (the
	// legacy key, for values sealed before). KMSCacheTTL bounds how long
	// an unwrapped data key stays in memory (AUTOGATE_KMS_CACHE_TTL, 5m).
	KMSKeyID    string
	KMSCacheTTL time.Duration
	// InLambda is set when AWS_LAMBDA_FUNCTION_NAME is: the file system is
	// then read-only outside /tmp.
	InLambda bool
}

// defaultWorkDir is under /tmp, the only writable path on Lambda.
const defaultWorkDir = "/tmp/autogate"

// loadConfig reads the environment through lookup (os.LookupEnv).
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	c := config{
		Cluster: get("AUTOGATE_CLUSTER"), Table: get("AUTOGATE_TABLE"),
		QueueURL: get("AUTOGATE_QUEUE_URL"), DLQURL: get("AUTOGATE_DLQ_URL"),
		SecretKeySecretID: get("AUTOGATE_SECRET_KEY_SECRET_ID"),
		KMSKeyID:          get("AUTOGATE_KMS_KEY_ID"), KMSCacheTTL: secret.DefaultCacheTTL,
		Node:   get("AUTOGATE_NODE"),
		Margin: handler.DefaultMargin, Concurrency: 1, WorkDir: defaultWorkDir,
		OutputLimit: 64 << 10, PipIndexURL: get("AUTOGATE_PIP_INDEX_URL"), LogLevel: "info",
		Retention: autogateconfig.DefaultRetention, RepoRefresh: autogateconfig.DefaultRepoRefresh,
		InLambda: get("AWS_LAMBDA_FUNCTION_NAME") != "",
	}
	if v := get("AUTOGATE_SECRET_KEY"); v != "" {
		c.SecretKey = secret.Value(v)
	}
	if c.Node == "" {
		c.Node = get("AWS_LAMBDA_LOG_STREAM_NAME")
	}
	if c.Node == "" {
		c.Node = "lambda"
	}
	if v := get("AUTOGATE_WORK_DIR"); v != "" {
		c.WorkDir = v
	}
	if v := get("AUTOGATE_LOG_LEVEL"); v != "" {
		c.LogLevel = strings.ToLower(v)
	}
	if v := get("AUTOGATE_PIP_FIND_LINKS"); v != "" {
		for _, l := range strings.Split(v, ",") {
			if l = strings.TrimSpace(l); l != "" {
				c.PipFindLinks = append(c.PipFindLinks, l)
			}
		}
	}
	var errs []error
	parse := func(key string, fn func(string) error) {
		if v := get(key); v != "" {
			if err := fn(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
			}
		}
	}
	parse("AUTOGATE_KMS_CACHE_TTL", func(v string) (err error) { c.KMSCacheTTL, err = time.ParseDuration(v); return err })
	parse("AUTOGATE_HANDBACK_MARGIN", func(v string) (err error) { c.Margin, err = time.ParseDuration(v); return err })
	parse("AUTOGATE_LAMBDA_CONCURRENCY", func(v string) (err error) { c.Concurrency, err = strconv.Atoi(v); return err })
	parse("AUTOGATE_OUTPUT_LIMIT", func(v string) (err error) { c.OutputLimit, err = strconv.Atoi(v); return err })
	parse("AUTOGATE_PIP_NO_INDEX", func(v string) (err error) { c.PipNoIndex, err = strconv.ParseBool(v); return err })
	parse("AUTOGATE_RETENTION", func(v string) (err error) { c.Retention, err = time.ParseDuration(v); return err })
	parse("AUTOGATE_REPO_REFRESH", func(v string) (err error) { c.RepoRefresh, err = time.ParseDuration(v); return err })
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	return c, c.validate()
}

// validate checks c; every problem is reported, not just the first.
func (c config) validate() error {
	var errs []error
	for _, req := range []struct{ key, v string }{
		{"AUTOGATE_CLUSTER", c.Cluster}, {"AUTOGATE_TABLE", c.Table}, {"AUTOGATE_QUEUE_URL", c.QueueURL},
	} {
		if req.v == "" {
			errs = append(errs, fmt.Errorf("%s is required", req.key))
		}
	}
	if c.Cluster != "" {
		if err := resource.ValidateCluster(c.Cluster); err != nil {
			errs = append(errs, fmt.Errorf("AUTOGATE_CLUSTER: %w", err))
		}
	}
	if len(c.SecretKey) == 0 && c.SecretKeySecretID == "" && c.KMSKeyID == "" {
		errs = append(errs, errors.New("AUTOGATE_KMS_KEY_ID, AUTOGATE_SECRET_KEY_SECRET_ID or AUTOGATE_SECRET_KEY is required"))
	}
	if c.KMSCacheTTL < time.Second || c.KMSCacheTTL > time.Hour {
		errs = append(errs, fmt.Errorf("AUTOGATE_KMS_CACHE_TTL %v out of range 1s..1h", c.KMSCacheTTL))
	}
	if len(c.SecretKey) > 0 {
		if _, err := secret.ParseKey(string(c.SecretKey)); err != nil {
			errs = append(errs, fmt.Errorf("AUTOGATE_SECRET_KEY: %w", err))
		}
	}
	if c.Margin <= 0 {
		errs = append(errs, fmt.Errorf("AUTOGATE_HANDBACK_MARGIN %v must be positive", c.Margin))
	}
	if c.Concurrency < 1 || c.Concurrency > 10 {
		errs = append(errs, fmt.Errorf("AUTOGATE_LAMBDA_CONCURRENCY %d out of range 1..10 (an SQS batch holds at most 10 records)", c.Concurrency))
	}
	if c.OutputLimit <= 0 {
		errs = append(errs, fmt.Errorf("AUTOGATE_OUTPUT_LIMIT %d must be positive", c.OutputLimit))
	}
	if err := autogateconfig.CheckRetention(c.Retention); err != nil {
		errs = append(errs, fmt.Errorf("AUTOGATE_RETENTION %w", err))
	}
	if err := autogateconfig.CheckRepoRefresh(c.RepoRefresh); err != nil {
		errs = append(errs, fmt.Errorf("AUTOGATE_REPO_REFRESH %w", err))
	}
	if !filepath.IsAbs(c.WorkDir) {
		errs = append(errs, fmt.Errorf("AUTOGATE_WORK_DIR %q must be an absolute path", c.WorkDir))
	} else if c.InLambda && !strings.HasPrefix(filepath.Clean(c.WorkDir)+"/", "/tmp/") {
		errs = append(errs, fmt.Errorf("AUTOGATE_WORK_DIR %q must be under /tmp: it is the only writable path on Lambda", c.WorkDir))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("AUTOGATE_LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// node is the runner set-up this configuration asks for; the caller adds
// the store, keyring, queue, clock, logger and metrics.
func (c config) node() node.Config {
	return node.Config{
		// Lambda writes only under /tmp: run directories stay there.
		Node: c.Node, Cluster: c.Cluster, Dir: c.WorkDir, WorkDir: filepath.Join(c.WorkDir, "work"), Retention: c.Retention, RepoRefresh: c.RepoRefresh,
		OutputLimit: c.OutputLimit, Concurrency: c.Concurrency,
		Pip: executor.PipConfig{IndexURL: c.PipIndexURL, FindLinks: c.PipFindLinks, NoIndex: c.PipNoIndex},
	}
}
