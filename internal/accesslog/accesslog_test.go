package accesslog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMiddleware(t *testing.T) {
	tests := []struct {
		name, path, reqID string
		status            int
		wantLogged        bool
	}{
		{"api request", "/v1/services", "", http.StatusCreated, true},
		{"keeps a caller's request ID", "/v1/x", "abc123", http.StatusOK, true},
		{"probe at debug", "/healthz", "", http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			h := Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				From(r.Context()).User = "alice"
				From(r.Context()).Cluster = "eu-1"
				w.WriteHeader(tt.status)
			}))
			req := httptest.NewRequest(http.MethodPost, tt.path, nil)
			if tt.reqID != "" {
				req.Header.Set("X-Request-Id", tt.reqID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			id := rec.Header().Get("X-Request-Id")
			if id == "" || (tt.reqID != "" && id != tt.reqID) {
				t.Errorf("X-Request-Id %q, want %q or a new one", id, tt.reqID)
			}
			if !tt.wantLogged {
				if buf.Len() != 0 {
					t.Errorf("probe logged at info: %s", buf.String())
				}
				return
			}
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("log line %q: %v", buf.String(), err)
			}
			if line["status"] != float64(tt.status) || line["user"] != "alice" || line["cluster"] != "eu-1" || line["request_id"] != id {
				t.Errorf("log line %v", line)
			}
		})
	}
	if From(httptest.NewRequest("GET", "/", nil).Context()) == nil {
		t.Error("From outside the middleware returned nil")
	}
}
