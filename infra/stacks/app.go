package stacks

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Stacks are the stacks [Build] added, by cluster ID.
type Stacks struct {
	Clusters map[string]awscdk.Stack
	// Manager is nil when the config has no manager.
	Manager awscdk.Stack
}

// Build adds one stack per configured cluster and the manager stack to app,
// and runs cdk-nag's AwsSolutions checks on all of them. repoRoot is the
// Docker build context of the image for stacks without a prebuilt image.
func Build(app awscdk.App, cfg *Config, repoRoot string) *Stacks {
	out := &Stacks{Clusters: map[string]awscdk.Stack{}}
	for i := range cfg.Clusters {
		cc := &cfg.Clusters[i]
		out.Clusters[cc.ID] = NewClusterStack(app, cc, cfg.Manager, repoRoot)
	}
	// A cluster that uses another's table deploys after it (same account
	// and region, so CloudFormation can order them).
	for i := range cfg.Clusters {
		cc := &cfg.Clusters[i]
		if cc.SharedTable != "" {
			out.Clusters[cc.ID].AddStackDependency(out.Clusters[cc.SharedTable], jsii.String("uses its table"))
		}
	}
	if cfg.Manager != nil {
		out.Manager = NewManagerStack(app, cfg.Manager, repoRoot)
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return out
}

// NewClusterStack is the stack "Autogate-<id>" holding one [Cluster], in the
// cluster's account and region.
func NewClusterStack(scope constructs.Construct, cfg *ClusterConfig, mgr *ManagerConfig, repoRoot string) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(StackName(cfg.ID)), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(cfg.Account), Region: jsii.String(cfg.Region)},
		Description: jsii.String(fmt.Sprintf("Autogate cluster %s (%d gateway(s), runners: %s)", cfg.ID, *cfg.Gateways, cfg.Runners)),
	})
	awscdk.Tags_Of(stack).Add(jsii.String("autogate:cluster"), jsii.String(cfg.ID), nil)
	NewCluster(stack, "Cluster", &ClusterProps{Config: cfg, Manager: mgr, RepoRoot: repoRoot})
	return stack
}

// Ports and paths of `autogate manager`.
const (
	// managerPort serves the manager's API, the gateways' tunnel endpoint,
	// /healthz and /readyz over HTTPS.
	managerPort = 9443
	// ManagerNamespace is the manager's key namespace in its table
	// (AUTOGATE_MANAGER_CLUSTER's default, "manager").
	ManagerNamespace = "manager"
	// ManagerTableName is the physical name of the manager's table.
	ManagerTableName = "autogate-manager-registry"
)

// managerStopTimeout is the manager container's stop timeout: the lease
// hand-over and in-flight requests (it runs no services).
const managerStopTimeout = 60 * time.Second

// Manager is the Gateway Manager's stack content.
type Manager struct {
	Table        awsdynamodb.Table
	Role         awsiam.Role
	Service      awsecs.FargateService
	LoadBalancer awselasticloadbalancingv2.ApplicationLoadBalancer
	TargetGroup  awselasticloadbalancingv2.ApplicationTargetGroup
	Alarms       []awscloudwatch.Alarm
}

// NewManagerStack is the stack "Autogate-manager": `autogate manager` as an
// ECS service (active/standby on its own table, like a cluster's gateways)
// behind an HTTPS load balancer, with its alarms. The clusters' gateways
// reach it over HTTPS with their cluster credential (an ECS secret of each
// cluster stack); it needs no cross-account role.
func NewManagerStack(scope constructs.Construct, mgr *ManagerConfig, repoRoot string) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(ManagerStackName), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(mgr.Account), Region: jsii.String(mgr.Region)},
		Description: jsii.String(fmt.Sprintf("Autogate Gateway Manager (%d task(s), active/standby on its table)", *mgr.Managers)),
	})
	awscdk.Tags_Of(stack).Add(jsii.String("autogate:cluster"), jsii.String("manager"), nil)
	NewManager(stack, "Manager", mgr, repoRoot)
	return stack
}

// NewManager builds the manager under scope, which must be inside a stack
// in the manager's account and region.
func NewManager(parent constructs.Construct, id string, mgr *ManagerConfig, repoRoot string) *Manager {
	scope := constructs.NewConstruct(parent, jsii.String(id))
	m := &Manager{}
	retention := retentionDays[mgr.LogRetentionDays]
	m.Table = awsdynamodb.NewTable(scope, jsii.String("Registry"), &awsdynamodb.TableProps{
		TableName:           jsii.String(ManagerTableName),
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String("expiresAt"),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		DeletionProtection: jsii.Bool(mgr.TableDeletionProtection),
		// Kept on update and delete, not after a failed first create (see
		// the cluster table).
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
	})
	addStoreIndexes(m.Table) // the manager runs the same store
	net := newNetwork(scope, mgr.VPCCIDR, *mgr.NATGateways, mgr.AvailabilityZones, retention)
	ecsCluster := newECSCluster(scope, "autogate-manager", net.VPC, true, mgr.ECSExec, retention)
	image, _ := newImage(scope, mgr.Image, mgr.Architecture, repoRoot, false)
	m.Role = newTaskRole(scope, "ManagerTaskRole", "", "Autogate Gateway Manager tasks", mgr.Account, mgr.Region)
	grantTable(m.Role, *m.Table.TableArn(), ManagerNamespace)

	env := map[string]*string{
		"AUTOGATE_MANAGER_STORE":  jsii.String("dynamodb"),
		"AUTOGATE_MANAGER_TABLE":  jsii.String(ManagerTableName),
		"AUTOGATE_MANAGER_LISTEN": jsii.String(fmt.Sprintf(":%d", managerPort)),
		// The active writes Autogate/ActiveHolder, the no-active-manager alarm's metric.
		"AUTOGATE_MANAGER_EMF_METRICS": jsii.String("true"),
		"AWS_REGION":                   jsii.String(mgr.Region),
	}
	f := newFronted(scope, &frontedProps{
		Name: "manager", Describe: "Gateway Manager", Net: net, Cluster: ecsCluster,
		Image: image, Role: m.Role, Size: mgr.Task, Arch: mgr.Architecture,
		Command: []string{"manager"}, Env: env, Secrets: map[string]awsecs.Secret{}, Port: managerPort,
		Count: *mgr.Managers, HealthPath: livePath, Internal: mgr.Internal, AllowedCIDRs: mgr.AllowedCIDRs,
		CertARN: mgr.CertificateARN, Retention: retention, LogDays: mgr.LogRetentionDays,
		// Time to release the lease and finish in-flight requests (the
		// manager runs no services).
		StopTimeout: managerStopTimeout,
		// How an operator reads the first admin password.
		ECSExec: mgr.ECSExec,
	})
	m.Service, m.LoadBalancer, m.TargetGroup = f.Service, f.LoadBalancer, f.TargetGroup
	if mgr.ECSExec {
		suppressExec(m.Role, id)
	}

	topic := alarmTopic(scope, mgr.AlarmTopicARN, "autogate-manager-alarms")
	// Standby managers pass /healthz too: the lease holder's own metric
	// (AUTOGATE_MANAGER_EMF_METRICS) says whether one is active.
	a := activeHolderMetric(ManagerNamespace).CreateAlarm(scope, jsii.String("NoActiveManager"), &awscloudwatch.CreateAlarmOptions{
		AlarmName: jsii.String("autogate-manager-no-active-manager"),
		AlarmDescription: jsii.String("No Gateway Manager has held the lease for 3 minutes (no Autogate/ActiveHolder point for Cluster=" + ManagerNamespace + ", which the active writes once a minute): " +
			"clusters cannot be reached through the manager. If no-healthy-manager fires too, the tasks are down (see the ECS service's events); " +
			"else they are up as standbys: look in the manager log group for lease renewal errors (DynamoDB throttling, IAM, network)."),
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(3),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	})
	notify(a, topic)
	m.Alarms = append(m.Alarms, a)
	h := f.TargetGroup.Metrics().HealthyHostCount(&awscloudwatch.MetricOptions{
		Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Minimum"),
	}).CreateAlarm(scope, jsii.String("NoHealthyManager"), &awscloudwatch.CreateAlarmOptions{
		AlarmName: jsii.String("autogate-manager-no-healthy-manager"),
		AlarmDescription: jsii.String("No manager task passes the load balancer's health check (/healthz) for 3 minutes: every task is down or unreachable. " +
			"See the manager service's events and stopped tasks, and the manager log group."),
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(3),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	})
	notify(h, topic)
	m.Alarms = append(m.Alarms, h)

	stack := awscdk.Stack_Of(scope)
	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Description: jsii.String(desc), Value: v})
	}
	out("Endpoint", "HTTPS endpoint of the manager (point its DNS name here)", f.LoadBalancer.LoadBalancerDnsName())
	out("RegistryTableName", "DynamoDB table of the manager", m.Table.TableName())
	out("ManagerLogGroup", "CloudWatch Logs group of the manager tasks", f.Logs.LogGroupName())
	out("AlarmTopicArn", "SNS topic the manager's alarms notify (subscribe to it)", topic.TopicArn())
	return m
}
