package tunnel

import (
	"net/http"
	"testing"
)

// BenchmarkRoundTrip sends small requests through one tunnel from 16
// concurrent callers (×GOMAXPROCS) to a handler that answers at once: the
// cost of the tunnel itself (framing, the socket, dispatch).
func BenchmarkRoundTrip(b *testing.B) {
	m := newFakeManager(b, LinkConfig{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"user":"alice","role":"admin"}`))
	})
	dialGateway(b, m, 1, h, DialOptions{})
	l := m.link()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := l.RoundTrip(b.Context(), get("/v1/whoami"))
			if err != nil || resp.Head.Status != http.StatusOK {
				b.Errorf("RoundTrip: %v %+v", err, resp)
				return
			}
		}
	})
}
