package dynamo_test

import (
	"testing"
	"time"

	"github.com/autogate/autogate/internal/lease"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
)

// The holder publishes its certificate fingerprint next to its address
// (standbys pin it when they forward); a release clears both, and the
// next holder's replace them.
func TestLeasePublishesCertFingerprint(t *testing.T) {
	client, table := newTable(t)
	cluster := unique("c")
	cfg := func(node string) leasedynamo.Config {
		return leasedynamo.Config{Table: table, Cluster: cluster, Node: node, HeartbeatPeriod: -1,
			Address: "https://" + node + ":8443", CertFingerprint: "fp-" + node,
			LeaseDuration: 20 * time.Second, RenewDeadline: 15 * time.Second,
			RetryPeriod: 5 * time.Second, PollPeriod: 100 * time.Millisecond}
	}
	item := func() (addr, fp string) {
		t.Helper()
		var r struct {
			Address         string `dynamodbav:"address"`
			CertFingerprint string `dynamodbav:"certFingerprint"`
		}
		readLeaseItem(t, client, table, cluster, &r)
		return r.Address, r.CertFingerprint
	}
	h := &history{}
	a := startNode(t, client, cfg("a"), h, nil)
	eventually(t, 5*time.Second, "a active", a.active)
	if addr, fp := item(); addr != "https://a:8443" || fp != "fp-a" {
		t.Fatalf("lease item address %q fingerprint %q, want a's", addr, fp)
	}
	if _, term := a.e.Active(); term.CertFingerprint != "fp-a" {
		t.Errorf("a's own term %+v, want its fingerprint", term)
	}
	b := startNode(t, client, cfg("b"), h, nil)
	want := lease.Term{Holder: "a", Epoch: 1, Address: "https://a:8443", CertFingerprint: "fp-a"}
	eventually(t, 5*time.Second, "b sees a with its fingerprint", func() bool { return b.e.Current() == want })

	a.cancel()
	if err := a.e.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-a.done
	eventually(t, 5*time.Second, "b active", b.active)
	if addr, fp := item(); addr != "https://b:8443" || fp != "fp-b" {
		t.Errorf("after the hand-over: address %q fingerprint %q, want b's", addr, fp)
	}
	h.check(t)
}
