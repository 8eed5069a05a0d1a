package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autogate/autogate/internal/auth"
)

func TestUpdateUser(t *testing.T) {
	var got []string
	cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(raw))
		var req struct{ Role string }
		_ = json.Unmarshal(raw, &req)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":"rolly","role":%q}`, req.Role)
	})
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
		want  string // the request sent, "" for none
	}{
		{"role", []string{"update", "user", "rolly", "--role", "viewer"}, "", 0, `PATCH /v1/users/rolly {"role":"viewer"}`},
		{"password", []string{"update", "user", "rolly", "--password-stdin"}, "another long password\n", 0, `PATCH /v1/users/rolly {"password":"another long password"}`},
		{"nothing", []string{"update", "user", "rolly"}, "", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			var out, errb bytes.Buffer
			a := &App{Out: &out, Err: &errb, In: strings.NewReader(tt.stdin), Getenv: func(string) string { return "" }}
			code := a.Main(t.Context(), append(tt.args, "--config", cfg))
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errb.String())
			}
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("sent %q, want nothing", got)
				}
				return
			}
			if len(got) != 1 || strings.TrimSpace(got[0]) != tt.want {
				t.Errorf("sent %q, want %q", got, tt.want)
			}
			if !strings.Contains(out.String(), "user/rolly updated") {
				t.Errorf("stdout %q", out.String())
			}
		})
	}
}

// The same bad name exits alike through create (the server's 400) and
// apply (its local check), against a real gateway.
func TestBadNameExitCodeCreateAndApply(t *testing.T) {
	cfg, _ := gatewayConfig(t, auth.Admin)
	manifest := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(manifest, []byte("kind: repository\nname: Bad_Name\nurl: /srv/git/r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for name, args := range map[string][]string{
		"create": {"create", "repository", "Bad_Name", "--url", "/srv/git/r"},
		"apply":  {"apply", "-f", manifest},
	} {
		var out, errb bytes.Buffer
		a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
		codes[name] = a.Main(t.Context(), append(args, "--config", cfg))
		if !strings.Contains(errb.String(), "Bad_Name") {
			t.Errorf("%s: stderr %q does not name the bad name", name, errb.String())
		}
	}
	if codes["create"] != codes["apply"] || codes["create"] != 6 {
		t.Errorf("exit codes: create %d, apply %d; want both 6", codes["create"], codes["apply"])
	}
}
