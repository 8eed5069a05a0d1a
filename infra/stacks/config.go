package stacks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
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
	// lambdaVisibilityFactor and lambdaMinReceiveCount follow AWS's guidance
	// for Lambda on SQS: a visibility timeout of at least six times the
	// function timeout (the event source mapping retries throttled
	// invocations within it) and at least five receives before the
	// dead-letter queue.
	lambdaVisibilityFactor = 6
	lambdaMinReceiveCount  = 5
	// maxSyncWait is the longest a sync run or a wait holds a request
	// (the API's ?timeout maximum, 300 s); the load balancers' idle timeout
	// is this plus idleMargin, so they never cut a waiting client off.
	maxSyncWait = 300 * time.Second
	idleMargin  = 30 * time.Second
)

// Config is the clusters file: every cluster the app synthesizes, and the
// optional manager.
type Config struct {
	// Manager, when set, adds the "Autogate-manager" stack (`autogate
	// manager` on ECS behind HTTPS, its table and alarms) and, when it has a
	// URL, points every cluster's gateways at it.
	Manager *ManagerConfig `yaml:"manager"`
	// Clusters lists the clusters; each becomes the stack "Autogate-<id>".
	Clusters []ClusterConfig `yaml:"clusters"`
}

// ManagerConfig places the Gateway Manager's stack and tells the clusters'
// gateways where it is. Zero values take the defaults documented on each
// field (see [ManagerConfig.applyDefaults]).
type ManagerConfig struct {
	// Account is the 12-digit AWS account of the manager stack.
	Account string `yaml:"account"`
	// Region is the AWS region of the manager stack.
	Region string `yaml:"region"`
	// CertificateARN is the ACM certificate of the manager's HTTPS listener
	// (required; same account and region as the manager).
	CertificateARN string `yaml:"certificateArn"`
	// DomainName, when set, is the name clients and gateways use for the
	// manager (the certificate's name): the default of URL.
	DomainName string `yaml:"domainName"`
	// URL is the manager's address as the gateways dial it,
	// https://host[:port] (the only form the binary's tunnel accepts on a
	// deployed cluster, see [ValidateManagerURL]); default
	// https://<domainName> when domainName is set. Empty: the gateways do
	// not connect to a manager (the stacks are in different accounts or
	// regions, so the load balancer's DNS name cannot be passed across).
	URL string `yaml:"url"`
	// Managers is the number of manager tasks: 1, or 2 and more for
	// active/standby on the manager's table; default 2.
	Managers *int `yaml:"managers"`
	// VPCCIDR is the CIDR of the manager's VPC; default 10.0.0.0/16.
	VPCCIDR string `yaml:"vpcCidr"`
	// NATGateways is the number of NAT gateways (0, 1 or 2); default 1.
	NATGateways *int `yaml:"natGateways"`
	// AvailabilityZones, as on a cluster.
	AvailabilityZones []string `yaml:"availabilityZones"`
	// Internal makes the manager's load balancer internal.
	Internal bool `yaml:"internal"`
	// AllowedCIDRs may reach the HTTPS listener; default as on a cluster.
	AllowedCIDRs []string `yaml:"allowedCidrs"`
	// AlarmTopicARN, when set, is the SNS topic the manager's alarms
	// notify; otherwise the stack creates one.
	AlarmTopicARN string `yaml:"alarmTopicArn"`
	// LogRetentionDays is the retention of every log group; default 30.
	LogRetentionDays int `yaml:"logRetentionDays"`
	// Task sizes the manager tasks; default 512 CPU units, 1024 MiB.
	Task TaskSize `yaml:"task"`
	// Image is a prebuilt image URI; empty builds the repository's
	// Dockerfile as a CDK asset.
	Image string `yaml:"image"`
	// Architecture is amd64 (default) or arm64.
	Architecture string `yaml:"architecture"`
	// TableDeletionProtection, as on a cluster, for the manager's table.
	TableDeletionProtection bool `yaml:"tableDeletionProtection"`
	// ECSExec turns on ECS Exec for the manager tasks (to read the first
	// admin password, as on a cluster); default false.
	ECSExec bool `yaml:"ecsExec"`
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
	// balancer), which saves the NAT gateway's hourly charge. 0 is refused
	// with the Lambda runner: a function in a VPC never gets a public
	// address, so in a public subnet it could not reach SQS or Secrets
	// Manager (interface endpoints for them would cost more than the NAT
	// gateway they save).
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
	// (the certificate's name). The tasks advertise their own addresses
	// (standbys forward to the active task), never this name.
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
	// the dead-letter queue; default 5 with the Lambda runner (AWS's
	// guidance for Lambda on SQS: throttled or handed-back batches count as
	// receives), else 3; at least 5 with the Lambda runner.
	MaxReceiveCount int `yaml:"maxReceiveCount"`
	// OldestMessageAlarm is the age of the oldest work message that raises
	// the backlog alarm; default the visibility timeout plus 15 minutes.
	OldestMessageAlarm Duration `yaml:"oldestMessageAlarm"`
	// LogRetentionDays is the retention of every log group; default 30. Must
	// be one of CloudWatch Logs' values (1, 3, 5, 7, 14, 30, 60, 90, ...).
	LogRetentionDays int `yaml:"logRetentionDays"`
	// AlarmTopicARN, when set, is an SNS topic that every alarm notifies;
	// otherwise the stack creates one (subscribe to it after the deploy).
	AlarmTopicARN string `yaml:"alarmTopicArn"`
	// SecretKeySecret, when set, is the name of the Secrets Manager secret
	// that holds the legacy AUTOGATE_SECRET_KEY (base64 of 32 random bytes)
	// of a cluster deployed before its KMS key; default none. Stored secrets
	// are sealed under data keys wrapped by the cluster's KMS key (the stack
	// creates it, AUTOGATE_KMS_KEY_ID); the binary needs the legacy key only
	// to open values sealed before (until `autogate rotate secret-key
	// --reseal` re-seals them), so a new cluster sets none. When set, the
	// secret reaches the gateways and ECS runners as an ECS secret and the
	// Lambda runner reads it at cold start (README.md, "Deploying a cluster
	// to AWS").
	SecretKeySecret string `yaml:"secretKeySecret"`
	// TableDeletionProtection turns on DynamoDB deletion protection for the
	// cluster's table; default false. The table is retained on stack update
	// and delete either way, but a protected table cannot be deleted when
	// the first create rolls back, so the retry fails on its fixed name:
	// turn it on once the first deploy has succeeded.
	TableDeletionProtection bool `yaml:"tableDeletionProtection"`
	// ManagerCredentialSecret is the name of the Secrets Manager secret that
	// holds the cluster's manager credential (what `autogate manager create
	// cluster` printed); default "autogate/<id>/manager-credential". ECS
	// passes it to the gateways as AUTOGATE_MANAGER_CREDENTIAL when the
	// manager has a URL. Like the secret key it is created before the deploy.
	ManagerCredentialSecret string `yaml:"managerCredentialSecret"`
	// AWSEndpointURL, when set, is passed to every task and the Lambda
	// runner as AWS_ENDPOINT_URL, the SDK's endpoint override for every
	// service: LocalStack (localstack/clusters.local.yaml) sets it so the
	// deployed tasks, not only host processes, reach LocalStack. Leave it
	// empty on AWS.
	AWSEndpointURL string `yaml:"awsEndpointUrl"`
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

// GatewayRoleName is the IAM role name of a cluster's gateway tasks: a
// fixed name, so policies elsewhere (a KMS key, a bucket) can name it
// before the stack exists.
func GatewayRoleName(clusterID string) string { return "autogate-" + clusterID + "-gateway" }

// LambdaTimeout is the Lambda runner's function timeout.
func (c *ClusterConfig) LambdaTimeout() time.Duration {
	return c.MaxServiceTimeout.D() + lambdaTimeoutMargin
}

// VisibilityTimeout is the work queue's visibility timeout: the longest run
// (service timeout, or the Lambda timeout when there is a Lambda runner) plus
// a margin, rounded up to whole seconds; with a Lambda runner at least six
// times the function timeout (AWS's guidance for Lambda on SQS).
func (c *ClusterConfig) VisibilityTimeout() time.Duration {
	longest := c.MaxServiceTimeout.D()
	v := longest + visibilityMargin
	if c.HasLambdaRunner() {
		v = max(c.LambdaTimeout()+visibilityMargin, lambdaVisibilityFactor*c.LambdaTimeout())
	}
	return v.Round(time.Second)
}

// IdleTimeout is the load balancers' idle timeout: the longest sync wait
// plus a margin.
func IdleTimeout() time.Duration { return maxSyncWait + idleMargin }

// ManagerURL is the URL the gateways dial: manager.url, else
// https://<domainName>, else "" (no manager connection).
func (m *ManagerConfig) ManagerURL() string {
	if m.URL != "" {
		return m.URL
	}
	if m.DomainName != "" {
		return "https://" + m.DomainName
	}
	return ""
}

// ValidateManagerURL checks a manager URL the way the binary's tunnel
// connector does (url.Parse, a host), narrowed to https: the manager stack
// serves TLS only, so a deployed gateway never dials http.
func ValidateManagerURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" || p.Hostname() == "" {
		return fmt.Errorf("%q: want https://host[:port]", u)
	}
	if (p.Path != "" && p.Path != "/") || p.RawQuery != "" || p.Fragment != "" || p.User != nil {
		return fmt.Errorf("%q: want https://host[:port] with no path, query or user", u)
	}
	return nil
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
	if cfg.Manager != nil {
		cfg.Manager.applyDefaults()
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
		if c.HasLambdaRunner() {
			c.MaxReceiveCount = lambdaMinReceiveCount
		}
	}
	if c.OldestMessageAlarm == 0 {
		c.OldestMessageAlarm = Duration(c.VisibilityTimeout() + 15*time.Minute)
	}
	if c.LogRetentionDays == 0 {
		c.LogRetentionDays = 30
	}
	if c.ManagerCredentialSecret == "" && c.ID != "" {
		c.ManagerCredentialSecret = "autogate/" + c.ID + "/manager-credential"
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
		m.validate(&errs)
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
	validateNetwork(p, c.Region, c.AvailabilityZones, c.VPCCIDR, *c.NATGateways, errs)
	if *c.NATGateways == 0 && c.HasLambdaRunner() {
		errs.add(p+".natGateways", "0 does not work with the Lambda runner (runners: %s): a Lambda function in a VPC gets no public address, so in a public subnet it cannot reach SQS or Secrets Manager; use natGateways: 1", c.Runners)
	}
	validateArchitecture(p, c.Architecture, errs)
	if c.Image != "" {
		img, isECR := ParseECRImage(c.Image)
		switch {
		case !validImageURI(c.Image):
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
	validateEndpoint(p, "cluster", c.Account, c.Region, c.CertificateARN, c.DomainName, c.AllowedCIDRs, errs)
	if t := c.MaxServiceTimeout.D(); t < time.Second {
		errs.add(p+".maxServiceTimeout", "must be at least 1s, got %s", t)
	} else if c.HasLambdaRunner() && c.LambdaTimeout() > lambdaMaxTimeout {
		errs.add(p+".maxServiceTimeout", "%s is too long for the Lambda runner: at most %s (Lambda's 15m limit less %s for the runner's bookkeeping)", t, lambdaMaxTimeout-lambdaTimeoutMargin, lambdaTimeoutMargin)
	} else if c.VisibilityTimeout() > sqsMaxVisibility {
		errs.add(p+".maxServiceTimeout", "%s is too long: at most %s (SQS's 12h visibility limit less %s margin)", t, sqsMaxVisibility-visibilityMargin, visibilityMargin)
	}
	if n := c.MaxReceiveCount; n < 1 || n > 1000 {
		errs.add(p+".maxReceiveCount", "must be from 1 to 1000, got %d", n)
	} else if c.HasLambdaRunner() && n < lambdaMinReceiveCount {
		errs.add(p+".maxReceiveCount", "must be at least %d with the Lambda runner (AWS's guidance for Lambda on SQS: throttled invocations count as receives), got %d", lambdaMinReceiveCount, n)
	}
	if a := c.OldestMessageAlarm.D(); a < time.Minute {
		errs.add(p+".oldestMessageAlarm", "must be at least 1m, got %s", a)
	}
	validateOperations(p, "cluster", c.Region, c.LogRetentionDays, c.AlarmTopicARN, errs)
	if c.SecretKeySecret != "" && !secretRE.MatchString(c.SecretKeySecret) {
		errs.add(p+".secretKeySecret", "must be a Secrets Manager secret name, got %q", c.SecretKeySecret)
	}
	if !secretRE.MatchString(c.ManagerCredentialSecret) {
		errs.add(p+".managerCredentialSecret", "must be a Secrets Manager secret name, got %q", c.ManagerCredentialSecret)
	}
	if c.AWSEndpointURL != "" {
		if u, err := url.Parse(c.AWSEndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.add(p+".awsEndpointUrl", "must be an http(s) URL such as http://localhost.localstack.cloud:4566, got %q", c.AWSEndpointURL)
		}
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

// validate checks the manager's settings.
func (m *ManagerConfig) validate(errs *fieldErrors) {
	const p = "manager"
	if !accountRE.MatchString(m.Account) {
		errs.add(p+".account", "must be a 12-digit AWS account ID, got %q", m.Account)
	}
	if !regionRE.MatchString(m.Region) {
		errs.add(p+".region", "must be an AWS region such as us-east-1, got %q", m.Region)
	}
	if u := m.ManagerURL(); u != "" {
		if err := ValidateManagerURL(u); err != nil {
			errs.add(p+".url", "%v", err)
		}
	}
	if g := *m.Managers; g < 1 || g > 10 {
		errs.add(p+".managers", "must be from 1 to 10 (1 = single manager, 2+ = active/standby), got %d", g)
	}
	validateNetwork(p, m.Region, m.AvailabilityZones, m.VPCCIDR, *m.NATGateways, errs)
	validateEndpoint(p, "manager", m.Account, m.Region, m.CertificateARN, m.DomainName, m.AllowedCIDRs, errs)
	validateOperations(p, "manager", m.Region, m.LogRetentionDays, m.AlarmTopicARN, errs)
	validateArchitecture(p, m.Architecture, errs)
	if m.Image != "" && !validImageURI(m.Image) {
		errs.add(p+".image", "must be an image URI without spaces, got %q", m.Image)
	}
	validateTaskSize(p+".task", m.Task, errs)
}

// applyDefaults fills in every optional field of the manager left at its
// zero value.
func (m *ManagerConfig) applyDefaults() {
	if m.Managers == nil {
		m.Managers = ptr(2)
	}
	if m.VPCCIDR == "" {
		m.VPCCIDR = "10.0.0.0/16"
	}
	if m.NATGateways == nil {
		m.NATGateways = ptr(1)
	}
	if len(m.AllowedCIDRs) == 0 {
		m.AllowedCIDRs = []string{"0.0.0.0/0"}
		if m.Internal {
			m.AllowedCIDRs = []string{m.VPCCIDR}
		}
	}
	if m.LogRetentionDays == 0 {
		m.LogRetentionDays = 30
	}
	if m.Architecture == "" {
		m.Architecture = ArchAMD64
	}
	if m.Task.CPU == 0 {
		m.Task.CPU = 512
	}
	if m.Task.Memory == 0 {
		m.Task.Memory = 2 * m.Task.CPU
	}
}

func validImageURI(s string) bool { return !strings.ContainsAny(s, " \t\n") }

func validateArchitecture(p, arch string, errs *fieldErrors) {
	switch arch {
	case ArchAMD64, ArchARM64:
	default:
		errs.add(p+".architecture", "must be amd64 or arm64, got %q", arch)
	}
}

// validateNetwork checks the VPC settings of a cluster or the manager.
func validateNetwork(p, region string, azs []string, cidr string, nat int, errs *fieldErrors) {
	if n := len(azs); n == 1 {
		errs.add(p+".availabilityZones", "list at least two zones (the load balancer needs two), got %d", n)
	}
	for j, az := range azs {
		if !strings.HasPrefix(az, region) {
			errs.add(fmt.Sprintf("%s.availabilityZones[%d]", p, j), "%q is not a zone of region %s", az, region)
		}
	}
	if _, n, err := net.ParseCIDR(cidr); err != nil {
		errs.add(p+".vpcCidr", "must be an IPv4 CIDR such as 10.0.0.0/16, got %q", cidr)
	} else if ones, _ := n.Mask.Size(); n.IP.To4() == nil || ones < 16 || ones > 20 {
		errs.add(p+".vpcCidr", "must be an IPv4 CIDR from /16 to /20, got %q", cidr)
	}
	if nat < 0 || nat > 2 {
		errs.add(p+".natGateways", "must be 0, 1 or 2, got %d", nat)
	}
}

// validateEndpoint checks the HTTPS endpoint settings of a cluster or the
// manager (what names its account and region).
func validateEndpoint(p, what, account, region, certARN, domain string, cidrs []string, errs *fieldErrors) {
	if certARN == "" {
		errs.add(p+".certificateArn", "is required: the ARN of an ACM certificate for the HTTPS listener")
	} else if m := acmARNRE.FindStringSubmatch(certARN); m == nil {
		errs.add(p+".certificateArn", "must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>), got %q", certARN)
	} else if m[1] != region || m[2] != account {
		errs.add(p+".certificateArn", "must be in the %s's account and region (%s/%s), got %s/%s", what, account, region, m[2], m[1])
	}
	if domain != "" && !domainRE.MatchString(domain) {
		errs.add(p+".domainName", "must be a lower-case DNS name such as autogate.example.com, got %q", domain)
	}
	for j, cidr := range cidrs {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			errs.add(fmt.Sprintf("%s.allowedCidrs[%d]", p, j), "must be a CIDR such as 203.0.113.0/24, got %q", cidr)
		}
	}
}

// validateOperations checks the log and alarm settings.
func validateOperations(p, what, region string, retention int, topic string, errs *fieldErrors) {
	if !slices.Contains(logRetentionDays, retention) {
		errs.add(p+".logRetentionDays", "must be one of CloudWatch Logs' values %v, got %d", logRetentionDays, retention)
	}
	if topic != "" {
		if m := snsARNRE.FindStringSubmatch(topic); m == nil {
			errs.add(p+".alarmTopicArn", "must be an SNS topic ARN, got %q", topic)
		} else if m[1] != region {
			errs.add(p+".alarmTopicArn", "must be in the %s's region %s (CloudWatch alarms notify topics of their own region), got %s", what, region, m[1])
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
