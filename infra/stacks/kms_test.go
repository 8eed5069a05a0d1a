package stacks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// Template assertions for issue 13's item 8 (the cluster's KMS key) and
// issue 14's item 6 (shutdown grace from the stop timeout).

// TestKMSKey (13.8): one key per cluster with rotation on, retained on
// update and delete but not after a failed first create, aliased
// alias/autogate-<id> and output; its ARN reaches every node that opens
// secrets as AUTOGATE_KMS_KEY_ID, and only those nodes' roles may use it,
// only for the calls their keyring makes and only under an encryption
// context naming their cluster.
func TestKMSKey(t *testing.T) {
	doc := managerYAML("  url: https://m.example.com\n") + "clusters:" +
		clusterYAML("k1", acctA, regionA, 2, RunnersBoth, "") +
		clusterYAML("k2", acctA, regionA, 1, RunnersNone, "")
	_, st, _ := build(t, doc)
	for _, id := range []string{"k1", "k2"} {
		t.Run(id, func(t *testing.T) {
			tmpl, raw := templateOf(t, st.Clusters[id])
			must(t, "one key", func() { tmpl.ResourceCountIs(jsii.String("AWS::KMS::Key"), jsii.Number(1)) })
			must(t, "rotation on", func() {
				tmpl.HasResourceProperties(jsii.String("AWS::KMS::Key"), map[string]any{"EnableKeyRotation": true})
			})
			must(t, "key retained except on create", func() {
				tmpl.HasResource(jsii.String("AWS::KMS::Key"), map[string]any{"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"})
			})
			keyRef := map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("SecretsKey")), "Arn"}}
			must(t, "alias", func() {
				tmpl.HasResourceProperties(jsii.String("AWS::KMS::Alias"), map[string]any{"AliasName": "alias/autogate-" + id, "TargetKeyId": keyRef})
			})
			// The key policy leaves access to IAM (the account root, kms:*),
			// so the roles' conditioned grants below are what decides.
			for kid, k := range resources(raw, "AWS::KMS::Key") {
				pol, _ := json.Marshal(props(k)["KeyPolicy"])
				want := fmt.Sprintf(`{"Statement":[{"Action":"kms:*","Effect":"Allow","Principal":{"AWS":{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::%s:root"]]}},"Resource":"*"}],"Version":"2012-10-17"}`, acctA)
				if string(pol) != want {
					t.Errorf("key %s policy %s, want only the account's IAM (%s)", kid, pol, want)
				}
			}
			// The alias goes with the stack, so a new stack of the
			// cluster can take the name.
			for aid, a := range resources(raw, "AWS::KMS::Alias") {
				if _, ok := a["DeletionPolicy"]; ok {
					t.Errorf("alias %s has DeletionPolicy %v: a retained alias blocks the next stack", aid, a["DeletionPolicy"])
				}
			}
			must(t, "output", func() {
				tmpl.HasOutput(jsii.String("KmsKeyArn"), map[string]any{"Value": keyRef})
			})
			if errs := nagErrors(t, st.Clusters[id]); len(errs) > 0 {
				t.Errorf("unsuppressed cdk-nag errors:\n%s", strings.Join(errs, "\n"))
			}

			nodes := stackEnv(t, raw)
			wantNodes := map[string]string{"k1": "gateway runner lambda", "k2": "gateway"}[id]
			for _, kind := range strings.Fields(wantNodes) {
				if len(nodes[kind]) == 0 {
					t.Fatalf("no %s", kind)
				}
				for _, env := range nodes[kind] {
					if !regexp.MustCompile(`^map\[Fn::GetAtt:\[\w*SecretsKey\w+ Arn\]\]$`).MatchString(env["AUTOGATE_KMS_KEY_ID"]) {
						t.Errorf("%s: AUTOGATE_KMS_KEY_ID = %q, want the key's ARN", kind, env["AUTOGATE_KMS_KEY_ID"])
					}
					for _, legacy := range []string{"AUTOGATE_SECRET_KEY", "AUTOGATE_SECRET_KEY_SECRET_ID"} {
						if _, ok := env[legacy]; ok {
							t.Errorf("%s: %s set without secretKeySecret", kind, legacy)
						}
					}
				}
			}

			// Grants: which roles, which actions, which condition.
			granted := map[string][]string{}
			for pid, pol := range resources(raw, "AWS::IAM::Policy") {
				roles, _ := json.Marshal(props(pol)["Roles"])
				for _, s := range props(pol)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
					sm := s.(map[string]any)
					acts := asStrings(sm["Action"])
					if !slices.ContainsFunc(acts, func(a string) bool { return strings.HasPrefix(a, "kms:") }) {
						continue
					}
					role := regexp.MustCompile(`(Gateway|Runner|LambdaRunner)\w*Role`).FindString(string(roles))
					granted[role] = append(granted[role], acts...)
					if got, want := fmt.Sprint(sm["Condition"]), fmt.Sprintf("map[StringEquals:map[kms:EncryptionContext:autogate:cluster:%s]]", id); got != want {
						t.Errorf("policy %s (%s): KMS condition %s, want %s", pid, roles, got, want)
					}
					res, _ := json.Marshal(sm["Resource"])
					if !regexp.MustCompile(`^\{"Fn::GetAtt":\["\w*SecretsKey\w+","Arn"\]\}$`).Match(res) {
						t.Errorf("policy %s: KMS resource %s, want the cluster's key only", pid, res)
					}
				}
			}
			wantRoles := map[string][]string{"k1": {"GatewayTaskRole", "LambdaRunnerRole", "RunnerTaskRole"}, "k2": {"GatewayTaskRole"}}[id]
			var gotRoles []string
			for role, acts := range granted {
				gotRoles = append(gotRoles, role)
				slices.Sort(acts)
				if want := []string{"kms:Decrypt", "kms:GenerateDataKey"}; !slices.Equal(acts, want) {
					t.Errorf("%s: KMS actions %v, want %v", role, acts, want)
				}
			}
			slices.Sort(gotRoles)
			if !slices.Equal(gotRoles, wantRoles) {
				t.Errorf("roles with KMS grants: %v, want %v", gotRoles, wantRoles)
			}
		})
	}
	// The manager stores no secrets: no key, no grant.
	_, mraw := templateOf(t, st.Manager)
	if n := len(resources(mraw, "AWS::KMS::Key")); n != 0 {
		t.Errorf("manager stack: %d KMS keys, want 0", n)
	}
	for _, s := range statements(mraw) {
		for _, a := range s.actions {
			if strings.HasPrefix(a, "kms:") {
				t.Errorf("manager stack grants %s (policy %s)", a, s.policy)
			}
		}
	}
}

// TestKMSLegacySecretKey (13.8): a cluster deployed before its KMS key
// names its old secret key; the nodes then get it as well (it opens values
// sealed before), as an ECS secret or, for Lambda, the secret's name.
func TestKMSLegacySecretKey(t *testing.T) {
	_, st, _ := build(t, "clusters:"+clusterYAML("old", acctA, regionA, 2, RunnersBoth, "    secretKeySecret: autogate/old/secret-key\n"))
	tmpl, raw := templateOf(t, st.Clusters["old"])
	for _, c := range []string{"gateway", "runner"} {
		env, secrets := containerEnv(t, raw, c)
		if !slices.Equal(secrets, []string{"AUTOGATE_SECRET_KEY"}) {
			t.Errorf("%s secrets: %v, want [AUTOGATE_SECRET_KEY]", c, secrets)
		}
		if _, ok := env["AUTOGATE_SECRET_KEY"]; ok {
			t.Errorf("%s: AUTOGATE_SECRET_KEY in the plain environment", c)
		}
		checkKeyRef(t, c, env["AUTOGATE_KMS_KEY_ID"])
	}
	must(t, "lambda env", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{
				"AUTOGATE_SECRET_KEY_SECRET_ID": "autogate/old/secret-key",
				"AUTOGATE_KMS_KEY_ID":           map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("SecretsKey")), "Arn"}},
			})},
		})
	})
	found := false
	for _, s := range statements(raw) {
		if slices.Contains(s.actions, "secretsmanager:GetSecretValue") && s.sid == "ReadSecretKey" {
			found = true
		}
	}
	if !found {
		t.Error("the Lambda runner may not read the legacy secret key")
	}
	if errs := nagErrors(t, st.Clusters["old"]); len(errs) > 0 {
		t.Errorf("unsuppressed cdk-nag errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestKMSContextMatchesProduct: the grants' condition key is the one the
// keyring puts in every KMS call's encryption context (read from its
// source), so the condition cannot drift into denying every call.
func TestKMSContextMatchesProduct(t *testing.T) {
	src := productFiles(t, false, "internal/secret/kms")
	re := regexp.MustCompile(`map\[string\]string\{"([^"]+)": k\.cfg\.Cluster`)
	var keys []string
	for _, s := range src {
		for _, m := range re.FindAllStringSubmatch(s, -1) {
			keys = append(keys, m[1])
		}
	}
	if len(keys) != 1 || keys[0] != KMSContextCluster {
		t.Errorf("internal/secret/kms's encryption context names the cluster as %v; the stacks' condition uses %q", keys, KMSContextCluster)
	}
}

// TestShutdownGraceFromStopTimeout (14.6): the nodes that run services get
// AUTOGATE_SHUTDOWN_GRACE derived from their container's stop timeout, so
// running services get the grace and the kill path still ends before ECS's
// SIGKILL.
func TestShutdownGraceFromStopTimeout(t *testing.T) {
	if ShutdownGrace >= StopTimeout || ShutdownGrace != StopTimeout-KillMargin || KillMargin <= 0 {
		t.Fatalf("grace %s, stop timeout %s, margin %s: want 0 < grace = stop timeout − margin", ShutdownGrace, StopTimeout, KillMargin)
	}
	if StopTimeout > 120*time.Second {
		t.Fatalf("stop timeout %s: Fargate allows at most 120s", StopTimeout)
	}
	_, st, _ := build(t, "clusters:"+clusterYAML("gr", acctA, regionA, 2, RunnersECS, ""))
	_, raw := templateOf(t, st.Clusters["gr"])
	for _, c := range []string{"gateway", "runner"} {
		env, _ := containerEnv(t, raw, c)
		g, err := time.ParseDuration(fmt.Sprint(env["AUTOGATE_SHUTDOWN_GRACE"]))
		if err != nil {
			t.Fatalf("%s: AUTOGATE_SHUTDOWN_GRACE %v: %v", c, env["AUTOGATE_SHUTDOWN_GRACE"], err)
		}
		var stop float64
		for _, r := range resources(raw, "AWS::ECS::TaskDefinition") {
			for _, cd := range props(r)["ContainerDefinitions"].([]any) {
				if m := cd.(map[string]any); m["Name"] == c {
					stop, _ = m["StopTimeout"].(float64)
				}
			}
		}
		stopD := time.Duration(stop) * time.Second
		if stopD != StopTimeout || g != stopD-KillMargin || g >= stopD {
			t.Errorf("%s: grace %s with stop timeout %s; want grace = stop timeout − %s < stop timeout", c, g, stopD, KillMargin)
		}
	}
	// The manager runs no services and reads no grace.
	_, mst, _ := build(t, managerYAML("")+"clusters:"+clusterYAML("gm", acctA, regionA, 1, RunnersNone, ""))
	_, mraw := templateOf(t, mst.Manager)
	env, _ := containerEnv(t, mraw, "manager")
	if _, ok := env["AUTOGATE_SHUTDOWN_GRACE"]; ok {
		t.Error("manager: AUTOGATE_SHUTDOWN_GRACE set")
	}
}
