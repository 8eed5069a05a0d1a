package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
)

// TestDrainServesDuringHandOver checks that after the release the node
// keeps answering for the hand-over time, and only then closes: a standby
// forwarding into it meanwhile gets an answer, not a closed connection.
func TestDrainServesDuringHandOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable) // what a node past its term answers
	})}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String() + "/"
	get := func() error {
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	var released atomic.Bool
	d := drain{
		stopLease: func() {},
		release:   func(context.Context) error { released.Store(true); return nil },
		handOver:  time.Second, clk: clk,
		http: srv, grace: time.Second,
		log: slog.New(slog.DiscardHandler),
	}
	done := make(chan error, 1)
	go func() { done <- d.run(t.Context(), func() error { return nil }) }()
	eventually(t, "the hand-over wait", func() bool { return clk.Waiters() == 1 })
	if !released.Load() {
		t.Fatal("waiting for the hand-over before the lease was released")
	}
	if err := get(); err != nil {
		t.Fatalf("a request during the hand-over: %v, want an answer", err)
	}
	select {
	case <-done:
		t.Fatal("drain returned before the hand-over time passed")
	default:
	}
	clk.Advance(time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not finish after the hand-over")
	}
	if err := get(); err == nil {
		t.Error("the server still answers after the drain")
	}
}
