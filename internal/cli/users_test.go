package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
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
