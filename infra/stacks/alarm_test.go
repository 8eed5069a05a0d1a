package stacks

import (
	"fmt"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// alarmByName returns the properties of the alarm named name in tmpl.
func alarmByName(t *testing.T, tmpl map[string]any, name string) map[string]any {
	t.Helper()
	for _, a := range resources(tmpl, "AWS::CloudWatch::Alarm") {
		if p := props(a); p["AlarmName"] == name {
			return p
		}
	}
	t.Fatalf("no alarm named %s", name)
	return nil
}

// activeHolderProblems lists how p fails to alarm on the lease holder's
// own metric (Autogate/ActiveHolder{Cluster=cluster}, summed a minute)
// when it is missing or below 1 for 3 minutes: standbys pass the target
// group's health check, so HealthyHostCount cannot tell "no active" apart.
func activeHolderProblems(p map[string]any, cluster string) []string {
	var out []string
	for k, want := range map[string]any{
		"Namespace": "Autogate", "MetricName": "ActiveHolder", "Statistic": "Sum", "Period": float64(60),
		"Threshold": float64(1), "ComparisonOperator": "LessThanThreshold", "EvaluationPeriods": float64(3),
		"TreatMissingData": "breaching",
	} {
		if p[k] != want {
			out = append(out, fmt.Sprintf("%s: %s = %v, want %v", p["AlarmName"], k, p[k], want))
		}
	}
	dims, _ := p["Dimensions"].([]any)
	var d map[string]any
	if len(dims) == 1 {
		d, _ = dims[0].(map[string]any)
	}
	if d["Name"] != "Cluster" || d["Value"] != cluster {
		out = append(out, fmt.Sprintf("%s: dimensions %v, want Cluster=%s only", p["AlarmName"], p["Dimensions"], cluster))
	}
	if _, ok := p["AlarmActions"]; !ok {
		out = append(out, fmt.Sprintf("%s notifies nobody", p["AlarmName"]))
	}
	return out
}

func checkActiveHolderAlarm(t *testing.T, p map[string]any, cluster string) {
	t.Helper()
	for _, e := range activeHolderProblems(p, cluster) {
		t.Error(e)
	}
}

// checkHealthyAlarm checks the all-tasks-down alarm on HealthyHostCount.
func checkHealthyAlarm(t *testing.T, p map[string]any) {
	t.Helper()
	for k, want := range map[string]any{
		"Namespace": "AWS/ApplicationELB", "MetricName": "HealthyHostCount", "Statistic": "Minimum",
		"Threshold": float64(1), "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching",
	} {
		if p[k] != want {
			t.Errorf("%s: %s = %v, want %v", p["AlarmName"], k, p[k], want)
		}
	}
	if _, ok := p["AlarmActions"]; !ok {
		t.Errorf("%s notifies nobody", p["AlarmName"])
	}
}

// TestNoActiveAlarms (issue 14 follow-up): "no active gateway" and "no
// active manager" mean no node held the lease, from the metric the holder
// writes (the stacks turn --emf-metrics on); "no healthy" ones keep the
// target group's count for "every task is down".
func TestNoActiveAlarms(t *testing.T) {
	doc := managerYAML("  url: https://manager.example.com\n") + "clusters:" + clusterYAML("alm", acctA, regionA, 2, RunnersNone, "")
	_, st, _ := build(t, doc)

	_, craw := templateOf(t, st.Clusters["alm"])
	checkActiveHolderAlarm(t, alarmByName(t, craw, "autogate-alm-no-active-gateway"), "alm")
	checkHealthyAlarm(t, alarmByName(t, craw, "autogate-alm-no-healthy-gateway"))
	env, _ := containerEnv(t, craw, "gateway")
	if env["AUTOGATE_EMF_METRICS"] != "true" {
		t.Errorf("gateway AUTOGATE_EMF_METRICS = %v, want true (the alarm's metric)", env["AUTOGATE_EMF_METRICS"])
	}

	mtmpl, mraw := templateOf(t, st.Manager)
	checkActiveHolderAlarm(t, alarmByName(t, mraw, "autogate-manager-no-active-manager"), ManagerNamespace)
	checkHealthyAlarm(t, alarmByName(t, mraw, "autogate-manager-no-healthy-manager"))
	menv, _ := containerEnv(t, mraw, "manager")
	if menv["AUTOGATE_MANAGER_EMF_METRICS"] != "true" {
		t.Errorf("manager AUTOGATE_MANAGER_EMF_METRICS = %v, want true (the alarm's metric)", menv["AUTOGATE_MANAGER_EMF_METRICS"])
	}
	// The manager's metric dimension is its namespace, the one its
	// binary uses by default (no AUTOGATE_MANAGER_CLUSTER in the stack).
	if v, ok := menv["AUTOGATE_MANAGER_CLUSTER"]; ok && v != ManagerNamespace {
		t.Errorf("manager cluster %v: the alarm watches Cluster=%s", v, ManagerNamespace)
	}
	must(t, "manager alarms notify the topic", func() {
		mtmpl.ResourcePropertiesCountIs(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
			"AlarmActions": assertions.Match_ArrayWith(&[]any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("AlarmTopic"))}}),
		}, jsii.Number(2))
	})
}

// TestActiveHolderAlarmCheckFails proves checkActiveHolderAlarm can fail:
// the old form (HealthyHostCount, Minimum) is refused.
func TestActiveHolderAlarmCheckFails(t *testing.T) {
	old := map[string]any{
		"AlarmName": "autogate-x-no-active-gateway", "Namespace": "AWS/ApplicationELB", "MetricName": "HealthyHostCount",
		"Statistic": "Minimum", "Period": float64(60), "Threshold": float64(1), "ComparisonOperator": "LessThanThreshold",
		"EvaluationPeriods": float64(3), "TreatMissingData": "breaching", "AlarmActions": []any{"arn"},
		"Dimensions": []any{map[string]any{"Name": "TargetGroup", "Value": "tg"}, map[string]any{"Name": "LoadBalancer", "Value": "lb"}},
	}
	probs := activeHolderProblems(old, "x")
	if len(probs) < 4 { // namespace, metric, statistic, dimensions
		t.Errorf("the old HealthyHostCount alarm passed the ActiveHolder check, problems found: %v", probs)
	}
}
