package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/execution"
)

type oaSchema struct {
	Ref        string               `json:"$ref"`
	Required   []string             `json:"required"`
	Properties map[string]*oaSchema `json:"properties"`
	Enum       []string             `json:"enum"`
	Items      *oaSchema            `json:"items"`
}

type oaMedia struct {
	Schema *oaSchema `json:"schema"`
}

type oaOp struct {
	OperationID string `json:"operationId"`
	Parameters  []struct {
		Name   string    `json:"name"`
		Schema *oaSchema `json:"schema"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]oaMedia `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]oaMedia `json:"content"`
	} `json:"responses"`
}

type oaDoc struct {
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Paths      map[string]map[string]*oaOp `json:"paths"`
	Components struct {
		Schemas map[string]*oaSchema `json:"schemas"`
	} `json:"components"`
}

func (d *oaDoc) deref(s *oaSchema) *oaSchema {
	if s != nil && s.Ref != "" {
		return d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	return s
}

// pascal is oapi-codegen's type name for an operation ID ("run-service" →
// "RunService"); it names the operation's response type <that>Response.
func pascal(id string) string {
	var b strings.Builder
	up := true
	for _, r := range id {
		if r == '-' || r == '_' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// The list for the document, item by item (the generated client
// itself: cmd/autogate TestOpenAPIContract).
func TestOpenAPIDocumentContract(t *testing.T) {
	e := newEnv(t)
	_, body, _ := e.do(t, "", "GET", "/v1/openapi.json", "")
	var doc oaDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) == 0 || doc.Servers[0].URL == "" {
		t.Error("no servers entry")
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if _, clash := doc.Components.Schemas[pascal(op.OperationID)+"Response"]; clash {
				t.Errorf("schema %sResponse collides with the generated response type of %s", pascal(op.OperationID), op.OperationID)
			}
			if method == "put" {
				req := doc.deref(op.RequestBody.Content["application/json"].Schema)
				if slices.Contains(req.Required, "name") {
					t.Errorf("PUT %s requires name in the body; it is in the path", path)
				}
			}
			for st, r := range op.Responses {
				if st[0] != '2' {
					continue
				}
				s := doc.deref(r.Content["application/json"].Schema)
				if s == nil {
					continue
				}
				if s.Properties["items"] != nil {
					s = doc.deref(s.Properties["items"].Items)
				}
				for _, never := range []string{"sealedInputs", "value", "hash", "gen"} {
					if _, ok := s.Properties[never]; ok {
						t.Errorf("%s %s %s lists %q, which the server never returns", method, path, st, never)
					}
				}
			}
		}
	}
	for _, p := range []struct{ path, method string }{{"/v1/services/{name}/run", "post"}, {"/v1/executions/{id}/wait", "get"}} {
		if _, ok := doc.Paths[p.path][p.method].Responses["202"]; !ok {
			t.Errorf("%s %s does not declare its 202", p.method, p.path)
		}
	}
	statuses := make([]string, 0, len(execution.Statuses))
	for _, s := range execution.Statuses {
		statuses = append(statuses, string(s))
	}
	if got := doc.Components.Schemas["Execution"].Properties["status"].Enum; !slices.Equal(got, statuses) {
		t.Errorf("Execution.status enum = %q, want %q", got, statuses)
	}
	if got := doc.Components.Schemas["Service"].Properties["type"].Enum; len(got) != 4 {
		t.Errorf("Service.type enum = %q", got)
	}
	for _, prm := range doc.Paths["/v1/executions"]["get"].Parameters {
		if prm.Name == "status" && !slices.Equal(prm.Schema.Enum, statuses) {
			t.Errorf("the status filter's enum = %q, want %q (no empty value)", prm.Schema.Enum, statuses)
		}
	}
	// Secrets: the request takes the value, the answer never shows it.
	if _, ok := doc.Components.Schemas["Secret"].Properties["value"]; !ok {
		t.Error("the secret request schema lost its value")
	}
}

func TestUnknownRoutesAnswerProblems(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v1/nothing-here", 404, ""},
		{"GET", "/nowhere", 404, ""},
		{"DELETE", "/v1/executions", 405, "GET, HEAD"},
		{"PATCH", "/v1/services/x", 405, "GET, HEAD, PUT, DELETE"},
		{"POST", "/v1/whoami", 405, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			st, body, h := e.do(t, auth.Admin, tt.method, tt.path, "")
			if st != tt.status || h.Get("Content-Type") != "application/problem+json" || h.Get("Allow") != tt.allow {
				t.Fatalf("= %d %s (Content-Type %q, Allow %q), want %d problem+json, Allow %q", st, body, h.Get("Content-Type"), h.Get("Allow"), tt.status, tt.allow)
			}
			var p struct {
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != tt.status || p.Detail == "" {
				t.Errorf("problem %s: %v", body, err)
			}
		})
	}
}
