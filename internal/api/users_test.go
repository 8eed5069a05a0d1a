package api

import (
	"strings"
	"testing"

	"github.com/autogate/autogate/internal/auth"
)

// The gateway's user routes: a demotion revokes at once, the last admin stays.
func TestGatewayUserWrites(t *testing.T) {
	e := newEnv(t)
	if st, body, _ := e.do(t, auth.Admin, "PATCH", "/v1/users/operator-user", `{"role":"viewer"}`); st != 200 {
		t.Fatalf("demote operator-user = %d %s", st, body)
	}
	if st, body, _ := e.do(t, auth.Operator, "POST", "/v1/services/x/run", `{}`); st != 401 {
		t.Errorf("run with the demoted operator's token = %d %s, want 401", st, body)
	}
	for _, req := range []struct{ method, path, body string }{
		{"DELETE", "/v1/users/admin-user", ""},
		{"PATCH", "/v1/users/admin-user", `{"role":"operator"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, req.method, req.path, req.body); st != 409 || !strings.Contains(body, "last admin") {
			t.Errorf("%s %s = %d %s, want 409 naming the last admin", req.method, req.path, st, body)
		}
	}
}
