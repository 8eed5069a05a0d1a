package manager

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/auth"
)

// A manager user's tokens die with its record: routed requests too.
func TestManagerUserWritesRevokeRouting(t *testing.T) {
	e := newEnv(t, time.Minute)
	e.gateway(t, "eu-1", "eu-gw-1", 1)
	e.waitRouted(t, "eu-1", "eu-gw-1")
	if st, body, _ := e.do(t, auth.Admin, http.MethodPatch, "/v1/users/operator-user", `{"role":"viewer"}`); st != 200 {
		t.Fatalf("demote operator-user = %d %s", st, body)
	}
	if st, _ := e.whoami(t, "eu-1"); st != http.StatusUnauthorized {
		t.Errorf("routed whoami with the demoted user's token = %d, want 401", st)
	}
	if st, body, _ := e.do(t, auth.Admin, http.MethodDelete, "/v1/users/admin-user", ""); st != http.StatusConflict || !strings.Contains(body, "last admin") {
		t.Errorf("delete the manager's last admin = %d %s, want 409", st, body)
	}
}
