package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/wire"
)

func TestManagerCreateCluster(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		var req wire.CreateClusterRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(wire.CreatedCluster{Cluster: wire.Cluster{ID: req.ID, Region: req.Region, Status: wire.ClusterDisconnected},
			Credential: "agc_" + req.ID + "_c3VwZXItc2VjcmV0"})
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("current: manager\ncontexts:\n  manager:\n    server: "+srv.URL+"\n    token: agt_m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(dir, "eu-1.cred")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
		code := a.Main(t.Context(), append(args, "--config", cfg), a.Manager(&cobra.Command{Use: "manager"}))
		return code, out.String(), errb.String()
	}
	code, out, errs := run("manager", "create", "cluster", "eu-1", "--region", "eu-west-1", "--credential-file", credFile, "--cluster", "us-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if len(got) != 1 || got[0] != "POST /v1/clusters Bearer agt_m" {
		t.Errorf("requests %q, want one POST /v1/clusters with the context's token, never routed", got)
	}
	if strings.Contains(out, "c3VwZXItc2VjcmV0") || !strings.Contains(out, "cluster/eu-1 created") {
		t.Errorf("output %q: want the cluster named and the credential only in the file", out)
	}
	raw, err := os.ReadFile(credFile)
	if fi, _ := os.Stat(credFile); err != nil || fi.Mode().Perm() != 0o600 || strings.TrimSpace(string(raw)) != "agc_eu-1_c3VwZXItc2VjcmV0" {
		t.Errorf("credential file = %q, %v", raw, err)
	}
	// The file is never overwritten.
	if code, _, errs := run("manager", "create", "cluster", "eu-2", "--credential-file", credFile); code == 0 || !strings.Contains(errs, "could not be saved") {
		t.Errorf("second create into the same file: exit %d, %s", code, errs)
	}
	if code, out, _ := run("manager", "create", "cluster", "eu-3", "-o", "json"); code != 0 || !strings.Contains(out, `"credential": "agc_eu-3_`) {
		t.Errorf("-o json: exit %d, %s", code, out)
	}
	if code, _, _ := run("manager", "create", "cluster"); code != 2 {
		t.Errorf("no ID: exit %d, want 2", code)
	}
}
