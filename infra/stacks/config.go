package stacks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Runner modes: where a cluster executes services.
const (
	// RunnersNone runs services inside the active gateway (AUTOGATE_EXECUTION=local).
	RunnersNone = "none"
	// RunnersECS runs an ECS Fargate runner service scaled on queue backlog.
	RunnersECS = "ecs"
	// RunnersLambda runs the Lambda runner on the work queue.
	RunnersLambda = "lambda"
	// RunnersBoth runs the ECS and the Lambda runner on the same queue.
	RunnersBoth = "both"
)

// CPU architectures of the image, the Fargate tasks and the Lambda runner.
const (
	ArchAMD64 = "amd64"
	ArchARM64 = "arm64"
)

// Limits that follow from AWS quotas.
const (
	// lambdaMaxTimeout is Lambda's hard limit on one invocation.
	lambdaMaxTimeout = 15 * time.Minute
	// lambdaTimeoutMargin is added to the longest service timeout for the
	// runner's own bookkeeping (claim, record the result, delete the message).
	lambdaTimeoutMargin = 30 * time.Second
	// visibilityMargin is added to the longest run time (service timeout, or
	// the Lambda timeout when it is longer) to get the queue's visibility
	// timeout, so a message never reappears while its first attempt can still
	// be running, even if the visibility heartbeat is lost.
	visibilityMargin = 2 * time.Minute
	// sqsMaxVisibility is SQS's maximum visibility timeout (12 hours).
	sqsMaxVisibility = 12 * time.Hour
)

// Config is the clusters file: every cluster the app synthesizes, and the
// optional manager.
type Config struct {
	// Manager, when set, adds the "Autogate-manager" stack (registry table and
	// one cross-account access role per cluster) and points every cluster's
	// gateways at it.
	Manager *ManagerConfig `yaml:"manager"`
	// Clusters lists the clusters; each becomes the stack "Autogate-<id>".
	Clusters []ClusterConfig `yaml:"clusters"`
}

// ManagerConfig places the Gateway Manager's stack.
type ManagerConfig struct {
	// Account is the 12-digit AWS account of the manager stack.
	Account string `yaml:"account"`
	// Region is the AWS region of the manager stack.
	Region string `yaml:"region"`
	// URL is passed to gateways as AUTOGATE_MANAGER_URL (optional: empty until
	// a manager service is deployed).
	URL string `yaml:"url"`
}

// ClusterConfig is one cluster. Zero values take the defaults documented on
// each field (see [ClusterConfig.applyDefaults]).
type ClusterConfig struct {
	// ID names the stack (Autogate-<id>), the queues, the key namespace in the
	// table ("<id>#...") and the registry entry: 2 to 24 characters of
	// lower-case letters, digits and hyphens, starting with a letter.
	ID string `yaml:"id"`
	// Account is the 12-digit AWS account the cluster is deployed to.
	Account string `yaml:"account"`
	// Region is the AWS region the cluster is deployed to.
	Region string `yaml:"region"`
	// AvailabilityZones, when set, are used as they are (at least two);
	// otherwise the first two zones of the cdk.json context entry
	// "availability-zones:account=<account>:region=<region>" are used.
	AvailabilityZones []string `yaml:"availabilityZones"`
	// VPCCIDR is the CIDR of the cluster's VPC; default 10.0.0.0/16.
	VPCCIDR string `yaml:"vpcCidr"`
	// NATGateways is the number of NAT gateways (0, 1 or one per zone);
	// default 1. With 0 the tasks run in public subnets with public IP
	// addresses (their security groups still admit nothing but the load
	// balancer), which saves the NAT gateway's hourly charge.
	NATGateways *int `yaml:"natGateways"`
	// Image is a prebuilt image URI. Empty (the default) builds the
	// repository's Dockerfile as a CDK asset. The Lambda runner needs an ECR
	// URI in the cluster's region.
	Image string `yaml:"image"`
	// Architecture is amd64 (default) or arm64, for the image, the Fargate
	// tasks and the Lambda runner alike.
	Architecture string `yaml:"architecture"`
	// Gateways is the number of gateway tasks: 1, or 2 and more for
	// active/standby; default 2.
	Gateways *int `yaml:"gateways"`
	// Runners is none, ecs, lambda or both (required).
	Runners string `yaml:"runners"`
	// SharedTable, when set, is the ID of another cluster in the same account
	// and region whose table this cluster uses instead of creating its own.
	SharedTable string `yaml:"sharedTable"`
	// CertificateARN is the ACM certificate of the HTTPS listener (required;
	// same account and region as the cluster).
	CertificateARN string `yaml:"certificateArn"`
	// DomainName, when set, is the name clients use for the cluster endpoint
	// (the certificate's name); AUTOGATE_ADVERTISE_ADDR becomes
	// https://<domainName>, otherwise the load balancer's DNS name.
	DomainName string `yaml:"domainName"`
	// Internal makes the load balancer internal (no public address).
	Internal bool `yaml:"internal"`
	// AllowedCIDRs may reach the HTTPS listener; default 0.0.0.0/0 for an
	// internet-facing load balancer and the VPC CIDR for an internal one.
	AllowedCIDRs []string `yaml:"allowedCidrs"`
	// MaxServiceTimeout is the longest timeout any service of the cluster may
	// declare, e.g. "10m" (the default). It sizes the queue's visibility
	// timeout and the Lambda timeout.
	MaxServiceTimeout Duration `yaml:"maxServiceTimeout"`
	// MaxReceiveCount is how many receives a message gets before it moves to
	// the dead-letter queue; default 3.
	MaxReceiveCount int `yaml:"maxReceiveCount"`
	// OldestMessageAlarm is the age of the oldest work message that raises
	// the backlog alarm; default the visibility timeout plus 15 minutes.
	OldestMessageAlarm Duration `yaml:"oldestMessageAlarm"`
	// LogRetentionDays is the retention of every log group; default 30. Must
	// be one of CloudWatch Logs' values (1, 3, 5, 7, 14, 30, 60, 90, ...).
	LogRetentionDays int `yaml:"logRetentionDays"`
	// AlarmTopicARN, when set, is an SNS topic that every alarm notifies.
	AlarmTopicARN string `yaml:"alarmTopicArn"`
	// SecretKeySecret is the name of the Secrets Manager secret that holds
	// AUTOGATE_SECRET_KEY (base64 of 32 random bytes); default
	// "autogate/<id>/secret-key". It is created before the first deploy (see
	// README.md, "Deploying a cluster to AWS"), so it outlives the stack like the table it protects.
	SecretKeySecret string `yaml:"secretKeySecret"`
	// ContainerInsights enables CloudWatch Container Insights on the ECS
	// cluster; default true. The ECS runner's scaling reads its
	// RunningTaskCount metric, so it cannot be turned off with ECS runners.
	ContainerInsights *bool `yaml:"containerInsights"`
	// ECSExec turns on ECS Exec for the gateway service, so an operator can
	// open a shell in a gateway task (aws ecs execute-command), e.g. to read
	// the admin password the first gateway writes on first start. Default
	// false.
	ECSExec bool `yaml:"ecsExec"`
	// Gateway sizes the gateway tasks.
	Gateway TaskSize `yaml:"gateway"`
	// ECSRunner configures the ECS runner service (runners: ecs or both).
	ECSRunner ECSRunnerConfig `yaml:"ecsRunner"`
	// LambdaRunner configures the Lambda runner (runners: lambda or both).
	LambdaRunner LambdaRunnerConfig `yaml:"lambdaRunner"`
}

// TaskSize is a Fargate task size: CPU units and memory in MiB.
type TaskSize struct {
	// CPU is in CPU units (1024 = 1 vCPU); gateway default 512, runner 1024.
	CPU int `yaml:"cpu"`
	// Memory is in MiB; gateway default 1024, runner 2048.
	Memory int `yaml:"memory"`
}

// ECSRunnerConfig sizes and scales the ECS runner service.
type ECSRunnerConfig struct {
	TaskSize `yaml:",inline"`
	// MinTasks is the floor of the service; default 1, at least 1 (target
	// tracking on backlog per task cannot scale out from zero tasks).
	MinTasks int `yaml:"minTasks"`
	// MaxTasks is the ceiling of the service; default 10.
	MaxTasks int `yaml:"maxTasks"`
	// Concurrency is AUTOGATE_RUNNER_CONCURRENCY, executions per task;
	// default 2.
	Concurrency int `yaml:"concurrency"`
	// BacklogPerTask is the target of visible messages per running task;
	// default Concurrency.
	BacklogPerTask int `yaml:"backlogPerTask"`
}

// LambdaRunnerConfig sizes the Lambda runner.
type LambdaRunnerConfig struct {
	// Memory is in MB; default 2048.
	Memory int `yaml:"memory"`
	// EphemeralStorage is /tmp in MiB (512-10240); default 2048.
	EphemeralStorage int `yaml:"ephemeralStorage"`
	// BatchSize is the SQS batch size (1-10); default 1.
	BatchSize int `yaml:"batchSize"`
	// MaxConcurrency caps concurrent invocations from the queue (2-1000);
	// default 10.
	MaxConcurrency int `yaml:"maxConcurrency"`
}

// Duration is a time.Duration written as a Go duration string ("90s", "10m").
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 90s, 10m, 1h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// HasECSRunner reports whether the cluster runs the ECS runner service.
func (c *ClusterConfig) HasECSRunner() bool {
	return c.Runners == RunnersECS || c.Runners == RunnersBoth
}

// HasLambdaRunner reports whether the cluster runs the Lambda runner.
func (c *ClusterConfig) HasLambdaRunner() bool {
	return c.Runners == RunnersLambda || c.Runners == RunnersBoth
}

// HasQueue reports whether the cluster has a work queue (any runners).
func (c *ClusterConfig) HasQueue() bool { return c.Runners != RunnersNone }

// OwnsTable reports whether the cluster creates its own table.
func (c *ClusterConfig) OwnsTable() bool { return c.SharedTable == "" }

// TableName is the physical name of the table the cluster uses.
func (c *ClusterConfig) TableName() string {
	if c.SharedTable != "" {
		return tableName(c.SharedTable)
	}
	return tableName(c.ID)
}

func tableName(clusterID string) string { return "autogate-" + clusterID }

// StackName is the CDK stack name of a cluster.
func StackName(clusterID string) string { return "Autogate-" + clusterID }

// ManagerStackName is the CDK stack name of the manager.
const ManagerStackName = "Autogate-manager"

// GatewayRoleName is the IAM role name of a cluster's gateway tasks. It is
// fixed so the manager's access role can trust it before it exists.
func GatewayRoleName(clusterID string) string { return "autogate-" + clusterID + "-gateway" }

// ManagerAccessRoleName is the IAM role in the manager account that the
// gateways of one cluster assume.
func ManagerAccessRoleName(clusterID string) string { return "autogate-manager-access-" + clusterID }

// LambdaTimeout is the Lambda runner's function timeout.
func (c *ClusterConfig) LambdaTimeout() time.Duration {
	return c.MaxServiceTimeout.D() + lambdaTimeoutMargin
}

// VisibilityTimeout is the work queue's visibility timeout: the longest run
// (service timeout, or the Lambda timeout when there is a Lambda runner) plus
// a margin, rounded up to whole seconds.
func (c *ClusterConfig) VisibilityTimeout() time.Duration {
	longest := c.MaxServiceTimeout.D()
	if c.HasLambdaRunner() {
		longest = max(longest, c.LambdaTimeout())
	}
	return (longest + visibilityMargin).Round(time.Second)
}

// LoadConfig reads and validates a clusters file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read clusters file: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes a clusters file (unknown fields are errors), fills in
// defaults and validates it. Errors name the field by its path in the file.
func ParseConfig(data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("clusters: the file is empty; list at least one cluster")
		}
		return nil, withFieldPaths(err, fieldPaths(&root))
	}
	for i := range cfg.Clusters {
		cfg.Clusters[i].applyDefaults()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// lineRE matches the "line N: " prefix of yaml.v3's decoding errors.
var lineRE = regexp.MustCompile(`^line (\d+): `)

// withFieldPaths rewrites yaml.v3's "line N: msg" errors to
// "<field path>: msg (line N)".
func withFieldPaths(err error, paths map[int]string) error {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	errs := make([]error, 0, len(msgs))
	for _, m := range msgs {
		if sm := lineRE.FindStringSubmatch(m); sm != nil {
			line, _ := strconv.Atoi(sm[1]) // the regexp admits only digits
			if p, ok := paths[line]; ok {
				m = fmt.Sprintf("%s: %s (line %d)", p, strings.TrimPrefix(m, sm[0]), line)
			}
		}
		errs = append(errs, errors.New(m))
	}
	return errors.Join(errs...)
}

// fieldPaths maps each line of the document to the path of the first field
// that starts on it ("clusters[0].ecsRunner.maxTasks").
func fieldPaths(root *yaml.Node) map[int]string {
	paths := map[int]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if _, ok := paths[k.Line]; !ok {
					paths[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if _, ok := paths[c.Line]; !ok {
					paths[c.Line] = p
				}
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return paths
}

// applyDefaults fills in every optional field left at its zero value.
func (c *ClusterConfig) applyDefaults() {
	if c.VPCCIDR == "" {
		c.VPCCIDR = "10.0.0.0/16"
	}
	if c.NATGateways == nil {
		c.NATGateways = ptr(1)
	}
	if c.Architecture == "" {
		c.Architecture = ArchAMD64
	}
	if c.Gateways == nil {
		c.Gateways = ptr(2)
	}
	if len(c.AllowedCIDRs) == 0 {
		if c.Internal {
			c.AllowedCIDRs = []string{c.VPCCIDR}
		} else {
			c.AllowedCIDRs = []string{"0.0.0.0/0"}
		}
	}
	if c.MaxServiceTimeout == 0 {
		c.MaxServiceTimeout = Duration(10 * time.Minute)
	}
	if c.MaxReceiveCount == 0 {
		c.MaxReceiveCount = 3
	}
	if c.OldestMessageAlarm == 0 {
		c.OldestMessageAlarm = Duration(c.VisibilityTimeout() + 15*time.Minute)
	}
	if c.LogRetentionDays == 0 {
		c.LogRetentionDays = 30
	}
	if c.SecretKeySecret == "" && c.ID != "" {
		c.SecretKeySecret = "autogate/" + c.ID + "/secret-key"
	}
	if c.ContainerInsights == nil {
		c.ContainerInsights = ptr(true)
	}
	if c.Gateway.CPU == 0 {
		c.Gateway.CPU = 512
	}
	if c.Gateway.Memory == 0 {
		c.Gateway.Memory = 2 * c.Gateway.CPU
	}
	r := &c.ECSRunner
	if r.CPU == 0 {
		r.CPU = 1024
	}
	if r.Memory == 0 {
		r.Memory = 2 * r.CPU
	}
	if r.MinTasks == 0 {
		r.MinTasks = 1
	}
	if r.MaxTasks == 0 {
		r.MaxTasks = max(10, r.MinTasks)
	}
	if r.Concurrency == 0 {
		r.Concurrency = 2
	}
	if r.BacklogPerTask == 0 {
		r.BacklogPerTask = r.Concurrency
	}
	l := &c.LambdaRunner
	if l.Memory == 0 {
		l.Memory = 2048
	}
	if l.EphemeralStorage == 0 {
		l.EphemeralStorage = 2048
	}
	if l.BatchSize == 0 {
		l.BatchSize = 1
	}
	if l.MaxConcurrency == 0 {
		l.MaxConcurrency = 10
	}
}

var (
	clusterIDRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,22}[a-z0-9]$`)
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$`)
	acmARNRE    = regexp.MustCompile(`^arn:aws[a-z-]*:acm:([a-z0-9-]+):([0-9]{12}):certificate/[A-Za-z0-9-]+$`)
	snsARNRE    = regexp.MustCompile(`^arn:aws[a-z-]*:sns:([a-z0-9-]+):([0-9]{12}):[A-Za-z0-9_-]{1,256}$`)
	// ecrImageRE matches <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repo>(:<tag>|@<digest>).
	ecrImageRE = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([a-z0-9][a-z0-9._/-]*)(?::([A-Za-z0-9_.-]+)|@(sha256:[a-f0-9]{64}))$`)
	secretRE   = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	domainRE   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	// logRetentionDays are the values CloudWatch Logs accepts.
	logRetentionDays = slices.Sorted(maps.Keys(retentionDays))
	// fargateMemory is the memory range (MiB) Fargate accepts for each CPU size.
	// fargateMemory is the memory range and step (MiB) Fargate accepts for
	// each CPU size.
	fargateMemory = map[int][3]int{256: {512, 2048, 512}, 512: {1024, 4096, 1024}, 1024: {2048, 8192, 1024}, 2048: {4096, 16384, 1024}, 4096: {8192, 30720, 1024}, 8192: {16384, 61440, 4096}, 16384: {32768, 122880, 8192}}
)

// ECRImage is a parsed ECR image URI.
type ECRImage struct {
	Account, Region, Repository string
	// Tag or Digest is set, never both.
	Tag, Digest string
}

// ParseECRImage parses an ECR image URI; ok is false for other registries.
func ParseECRImage(uri string) (img ECRImage, ok bool) {
	m := ecrImageRE.FindStringSubmatch(uri)
	if m == nil {
		return ECRImage{}, false
	}
	return ECRImage{Account: m[1], Region: m[2], Repository: m[3], Tag: m[4], Digest: m[5]}, true
}

// fieldErrors collects validation errors, each prefixed with a field path.
type fieldErrors []error

func (e *fieldErrors) add(path, format string, args ...any) {
	*e = append(*e, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// Validate checks the whole file and returns every problem found, joined.
// It expects defaults to have been applied (ParseConfig does).
func (cfg *Config) Validate() error {
	var errs fieldErrors
	if len(cfg.Clusters) == 0 {
		errs.add("clusters", "list at least one cluster")
	}
	if m := cfg.Manager; m != nil {
		if !accountRE.MatchString(m.Account) {
			errs.add("manager.account", "must be a 12-digit AWS account ID, got %q", m.Account)
		}
		if !regionRE.MatchString(m.Region) {
			errs.add("manager.region", "must be an AWS region such as us-east-1, got %q", m.Region)
		}
		if m.URL != "" && !strings.HasPrefix(m.URL, "https://") && !strings.HasPrefix(m.URL, "wss://") {
			errs.add("manager.url", "must start with https:// or wss://, got %q", m.URL)
		}
	}
	byID := map[string]*ClusterConfig{}
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		if prev, dup := byID[c.ID]; dup && c.ID != "" {
			errs.add(fmt.Sprintf("clusters[%d].id", i), "%q is already used by another cluster (region %s)", c.ID, prev.Region)
		}
		byID[c.ID] = c
	}
	for i := range cfg.Clusters {
		cfg.Clusters[i].validate(fmt.Sprintf("clusters[%d]", i), byID, &errs)
	}
	return errors.Join(errs...)
}

func (c *ClusterConfig) validate(p string, byID map[string]*ClusterConfig, errs *fieldErrors) {
	switch {
	case c.ID == "":
		errs.add(p+".id", "is required")
	case c.ID == "manager":
		errs.add(p+".id", `"manager" is reserved for the manager stack`)
	case !clusterIDRE.MatchString(c.ID):
		errs.add(p+".id", "must be 2-24 lower-case letters, digits or hyphens, starting with a letter and not ending with a hyphen, got %q", c.ID)
	}
	if !accountRE.MatchString(c.Account) {
		errs.add(p+".account", "must be a 12-digit AWS account ID, got %q", c.Account)
	}
	if !regionRE.MatchString(c.Region) {
		errs.add(p+".region", "must be an AWS region such as us-east-1, got %q", c.Region)
	}
	if n := len(c.AvailabilityZones); n == 1 {
		errs.add(p+".availabilityZones", "list at least two zones (the load balancer needs two), got %d", n)
	}
	for j, az := range c.AvailabilityZones {
		if !strings.HasPrefix(az, c.Region) {
			errs.add(fmt.Sprintf("%s.availabilityZones[%d]", p, j), "%q is not a zone of region %s", az, c.Region)
		}
	}
	if _, n, err := net.ParseCIDR(c.VPCCIDR); err != nil {
		errs.add(p+".vpcCidr", "must be an IPv4 CIDR such as 10.0.0.0/16, got %q", c.VPCCIDR)
	} else if ones, _ := n.Mask.Size(); n.IP.To4() == nil || ones < 16 || ones > 20 {
		errs.add(p+".vpcCidr", "must be an IPv4 CIDR from /16 to /20, got %q", c.VPCCIDR)
	}
	if n := *c.NATGateways; n < 0 || n > 2 {
		errs.add(p+".natGateways", "must be 0, 1 or 2, got %d", n)
	}
	switch c.Architecture {
	case ArchAMD64, ArchARM64:
	default:
		errs.add(p+".architecture", "must be amd64 or arm64, got %q", c.Architecture)
	}
	if c.Image != "" {
		img, isECR := ParseECRImage(c.Image)
		switch {
		case strings.ContainsAny(c.Image, " \t\n"):
			errs.add(p+".image", "must be an image URI without spaces, got %q", c.Image)
		case c.HasLambdaRunner() && !isECR:
			errs.add(p+".image", "the Lambda runner needs an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>), got %q", c.Image)
		case c.HasLambdaRunner() && img.Region != c.Region:
			errs.add(p+".image", "the Lambda runner needs the image in the cluster's region %s, got %s", c.Region, img.Region)
		}
	}
	if g := *c.Gateways; g < 1 || g > 10 {
		errs.add(p+".gateways", "must be from 1 to 10 (1 = single gateway, 2+ = active/standby), got %d", g)
	}
	switch c.Runners {
	case RunnersNone, RunnersECS, RunnersLambda, RunnersBoth:
	case "":
		errs.add(p+".runners", "is required: one of none, ecs, lambda, both")
	default:
		errs.add(p+".runners", "must be one of none, ecs, lambda, both, got %q", c.Runners)
	}
	if c.SharedTable != "" {
		owner, ok := byID[c.SharedTable]
		switch {
		case c.SharedTable == c.ID:
			errs.add(p+".sharedTable", "names the cluster itself; leave it empty to create the cluster's own table")
		case !ok:
			errs.add(p+".sharedTable", "names no configured cluster: %q", c.SharedTable)
		case owner.SharedTable != "":
			errs.add(p+".sharedTable", "cluster %q itself uses the table of %q; name the owner of the table instead", c.SharedTable, owner.SharedTable)
		case owner.Account != c.Account || owner.Region != c.Region:
			errs.add(p+".sharedTable", "cluster %q is in %s/%s; a shared table must be in the same account and region (%s/%s)", c.SharedTable, owner.Account, owner.Region, c.Account, c.Region)
		}
	}
	if c.CertificateARN == "" {
		errs.add(p+".certificateArn", "is required: the ARN of an ACM certificate for the HTTPS listener")
	} else if m := acmARNRE.FindStringSubmatch(c.CertificateARN); m == nil {
		errs.add(p+".certificateArn", "must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>), got %q", c.CertificateARN)
	} else if m[1] != c.Region || m[2] != c.Account {
		errs.add(p+".certificateArn", "must be in the cluster's account and region (%s/%s), got %s/%s", c.Account, c.Region, m[2], m[1])
	}
	if c.DomainName != "" && !domainRE.MatchString(c.DomainName) {
		errs.add(p+".domainName", "must be a lower-case DNS name such as autogate.example.com, got %q", c.DomainName)
	}
	for j, cidr := range c.AllowedCIDRs {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			errs.add(fmt.Sprintf("%s.allowedCidrs[%d]", p, j), "must be a CIDR such as 203.0.113.0/24, got %q", cidr)
		}
	}
	if t := c.MaxServiceTimeout.D(); t < time.Second {
		errs.add(p+".maxServiceTimeout", "must be at least 1s, got %s", t)
	} else if c.HasLambdaRunner() && c.LambdaTimeout() > lambdaMaxTimeout {
		errs.add(p+".maxServiceTimeout", "%s is too long for the Lambda runner: at most %s (Lambda's 15m limit less %s for the runner's bookkeeping)", t, lambdaMaxTimeout-lambdaTimeoutMargin, lambdaTimeoutMargin)
	} else if c.VisibilityTimeout() > sqsMaxVisibility {
		errs.add(p+".maxServiceTimeout", "%s is too long: at most %s (SQS's 12h visibility limit less %s margin)", t, sqsMaxVisibility-visibilityMargin, visibilityMargin)
	}
	if n := c.MaxReceiveCount; n < 1 || n > 1000 {
		errs.add(p+".maxReceiveCount", "must be from 1 to 1000, got %d", n)
	}
	if a := c.OldestMessageAlarm.D(); a < time.Minute {
		errs.add(p+".oldestMessageAlarm", "must be at least 1m, got %s", a)
	}
	if !slices.Contains(logRetentionDays, c.LogRetentionDays) {
		errs.add(p+".logRetentionDays", "must be one of CloudWatch Logs' values %v, got %d", logRetentionDays, c.LogRetentionDays)
	}
	if c.AlarmTopicARN != "" {
		if m := snsARNRE.FindStringSubmatch(c.AlarmTopicARN); m == nil {
			errs.add(p+".alarmTopicArn", "must be an SNS topic ARN, got %q", c.AlarmTopicARN)
		} else if m[1] != c.Region {
			errs.add(p+".alarmTopicArn", "must be in the cluster's region %s (CloudWatch alarms notify topics of their own region), got %s", c.Region, m[1])
		}
	}
	if !secretRE.MatchString(c.SecretKeySecret) {
		errs.add(p+".secretKeySecret", "must be a Secrets Manager secret name, got %q", c.SecretKeySecret)
	}
	if c.HasECSRunner() && !*c.ContainerInsights {
		errs.add(p+".containerInsights", "must stay true with ECS runners: their scaling reads Container Insights' RunningTaskCount")
	}
	validateTaskSize(p+".gateway", c.Gateway, errs)
	if c.HasECSRunner() {
		r := c.ECSRunner
		validateTaskSize(p+".ecsRunner", r.TaskSize, errs)
		if r.MinTasks < 1 {
			errs.add(p+".ecsRunner.minTasks", "must be at least 1 (target tracking on backlog per task cannot scale out from zero), got %d", r.MinTasks)
		}
		if r.MaxTasks < r.MinTasks || r.MaxTasks > 1000 {
			errs.add(p+".ecsRunner.maxTasks", "must be from minTasks (%d) to 1000, got %d", r.MinTasks, r.MaxTasks)
		}
		if r.Concurrency < 1 || r.Concurrency > 64 {
			errs.add(p+".ecsRunner.concurrency", "must be from 1 to 64, got %d", r.Concurrency)
		}
		if r.BacklogPerTask < 1 {
			errs.add(p+".ecsRunner.backlogPerTask", "must be at least 1, got %d", r.BacklogPerTask)
		}
	}
	if c.HasLambdaRunner() {
		l := c.LambdaRunner
		if l.Memory < 128 || l.Memory > 10240 {
			errs.add(p+".lambdaRunner.memory", "must be from 128 to 10240 MB, got %d", l.Memory)
		}
		if l.EphemeralStorage < 512 || l.EphemeralStorage > 10240 {
			errs.add(p+".lambdaRunner.ephemeralStorage", "must be from 512 to 10240 MiB, got %d", l.EphemeralStorage)
		}
		if l.BatchSize < 1 || l.BatchSize > 10 {
			errs.add(p+".lambdaRunner.batchSize", "must be from 1 to 10, got %d", l.BatchSize)
		}
		if l.MaxConcurrency < 2 || l.MaxConcurrency > 1000 {
			errs.add(p+".lambdaRunner.maxConcurrency", "must be from 2 to 1000 (SQS event source limit), got %d", l.MaxConcurrency)
		}
	}
}

func validateTaskSize(p string, s TaskSize, errs *fieldErrors) {
	r, ok := fargateMemory[s.CPU]
	if !ok {
		errs.add(p+".cpu", "must be a Fargate CPU size (256, 512, 1024, 2048, 4096, 8192, 16384), got %d", s.CPU)
		return
	}
	if s.Memory < r[0] || s.Memory > r[1] || s.Memory%r[2] != 0 {
		errs.add(p+".memory", "must be from %d to %d MiB in steps of %d for cpu %d, got %d", r[0], r[1], r[2], s.CPU, s.Memory)
	}
}

func ptr[T any](v T) *T { return &v }

// AZContextKey is the cdk.json context key holding the availability zones of
// an account and region, which synth reads instead of asking AWS.
func AZContextKey(account, region string) string {
	return "availability-zones:account=" + account + ":region=" + region
}
