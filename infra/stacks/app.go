package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
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
// Docker build context of the image for clusters without a prebuilt image.
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
		out.Manager = NewManagerStack(app, cfg.Manager, cfg.Clusters)
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

// NewManagerStack is the stack "Autogate-manager": the registry table of
// clusters and, for each cluster, a role its gateways assume (from the
// cluster's own account) to register and look up their own entries.
func NewManagerStack(scope constructs.Construct, mgr *ManagerConfig, clusters []ClusterConfig) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(ManagerStackName), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(mgr.Account), Region: jsii.String(mgr.Region)},
		Description: jsii.String("Autogate Gateway Manager: cluster registry and cross-account access roles"),
	})
	awscdk.Tags_Of(stack).Add(jsii.String("autogate:cluster"), jsii.String("manager"), nil)
	registry := awsdynamodb.NewTable(stack, jsii.String("Registry"), &awsdynamodb.TableProps{
		TableName:           jsii.String("autogate-manager-registry"),
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String("expiresAt"),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		DeletionProtection: jsii.Bool(true),
		RemovalPolicy:      awscdk.RemovalPolicy_RETAIN,
	})
	for i := range clusters {
		cc := &clusters[i]
		// Trust the cluster's account, but only its gateway role: the
		// condition works before that role exists (a role ARN as principal
		// would not), so the stacks deploy in any order.
		role := awsiam.NewRole(stack, jsii.String("Access-"+cc.ID), &awsiam.RoleProps{
			RoleName:    jsii.String(ManagerAccessRoleName(cc.ID)),
			Description: jsii.String("Assumed by the gateways of Autogate cluster " + cc.ID + " to reach the manager"),
			AssumedBy: awsiam.NewAccountPrincipal(jsii.String(cc.Account)).WithConditions(&map[string]any{
				"ArnEquals": map[string]any{"aws:PrincipalArn": GatewayRoleARN(cc)},
			}),
			MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
		})
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("OwnRegistryEntriesOnly"),
			Actions: jsii.Strings("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem",
				"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"),
			Resources: jsii.Strings(*registry.TableArn()),
			Conditions: &map[string]any{
				"ForAllValues:StringLike": map[string]any{"dynamodb:LeadingKeys": []string{cc.ID + "#*"}},
			},
		}))
		awscdk.NewCfnOutput(stack, jsii.String("AccessRoleArn-"+cc.ID), &awscdk.CfnOutputProps{
			Description: jsii.String("Role the gateways of " + cc.ID + " assume"),
			Value:       role.RoleArn(),
		})
	}
	awscdk.NewCfnOutput(stack, jsii.String("RegistryTableName"), &awscdk.CfnOutputProps{Value: registry.TableName()})
	return stack
}
