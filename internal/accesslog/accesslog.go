// Package accesslog is the HTTP access log every Autogate server shares: one
// structured slog line per request (never bodies or headers), a request ID
// taken from X-Request-Id or made up and echoed back, and an Info in the
// request context that handlers fill in with who the caller was.
package accesslog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"
)

// Info is what handlers add to a request's log line.
type Info struct {
	User    string
	Cluster string
	status  int
}

type ctxKey struct{}

// From returns the request's Info, or a throwaway one outside the middleware.
func From(ctx context.Context) *Info {
	if i, ok := ctx.Value(ctxKey{}).(*Info); ok {
		return i
	}
	return &Info{}
}

// quiet paths are probed constantly; they log at debug.
var quiet = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Middleware logs every request next serves.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			b := make([]byte, 8)
			_, _ = rand.Read(b) // never fails since Go 1.24
			id = hex.EncodeToString(b)
			r.Header.Set("X-Request-Id", id) // forwarded requests carry it on
		}
		w.Header().Set("X-Request-Id", id)
		info := &Info{}
		next.ServeHTTP(&statusWriter{ResponseWriter: w, info: info}, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
		level := slog.LevelInfo
		if quiet[r.URL.Path] {
			level = slog.LevelDebug
		}
		attrs := []any{"request_id", id, "method", r.Method, "path", r.URL.Path, "status", info.status, "user", info.User}
		if info.Cluster != "" {
			attrs = append(attrs, "cluster", info.Cluster)
		}
		attrs = append(attrs, "duration_ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr)
		log.Log(r.Context(), level, "http request", attrs...)
	})
}

type statusWriter struct {
	http.ResponseWriter
	info *Info
}

func (w *statusWriter) WriteHeader(code int) {
	if w.info.status == 0 {
		w.info.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.info.status == 0 {
		w.info.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and a WebSocket upgrade) reach the
// underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
