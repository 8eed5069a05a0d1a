package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// benchGateway starts the real server wiring in-process on the embedded
// store, with a no-op executable service, and returns a logged-in client.
func benchGateway(b *testing.B) (*client.Client, string) {
	b.Helper()
	base := b.TempDir()
	repo := filepath.Join(base, "repo")
	os.MkdirAll(repo, 0o755)
	noop := filepath.Join(repo, "noop.sh")
	os.WriteFile(noop, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"},
		{"-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "-m", "noop"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	cfg := config.DefaultServer()
	cfg.DataDir, cfg.Listen, cfg.Node, cfg.LogLevel = filepath.Join(base, "data"), "127.0.0.1:0", "bench", "error"
	cfg.Concurrency = 8
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	shim := benchShim(b)
	go func() { done <- serveWith(ctx, cfg, shim, pw, io.Discard) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	var url string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u := regexp.MustCompile(`https://[0-9.:]+`).FindString(sc.Text()); u != "" {
			url = u
		}
		if strings.Contains(sc.Text(), "active") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	anon, err := client.New(url, "", client.TLS{CAFile: filepath.Join(cfg.DataDir, "tls", "tls.crt")})
	if err != nil {
		b.Fatal(err)
	}
	pw2, _ := os.ReadFile(filepath.Join(cfg.DataDir, "admin-password"))
	login, err := anon.Login(ctx, "admin", strings.TrimSpace(string(pw2)))
	if err != nil {
		b.Fatal(err)
	}
	cl, _ := client.New(url, login.Token, client.TLS{CAFile: filepath.Join(cfg.DataDir, "tls", "tls.crt")})
	if err := cl.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: repo}); err != nil {
		b.Fatal(err)
	}
	if err := cl.Create(ctx, &resource.Service{Meta: resource.Meta{Name: "noop"}, Type: resource.Executable, Repository: "r", Filename: "noop.sh"}); err != nil {
		b.Fatal(err)
	}
	// Warm the checkout cache so the benchmark measures steady state.
	if e, err := cl.Run(ctx, "noop", wire.RunRequest{}); err != nil || e.Status != execution.Succeeded {
		b.Fatalf("warm-up run: %v %+v", err, e)
	}
	return cl, noop
}

// reportLatency reports p50/p99 of d and len(d) per elapsed second as
// rate (runs/s for sync runs, accepted/s for async submissions).
func reportLatency(b *testing.B, d []time.Duration, rate string) {
	b.Helper()
	slices.Sort(d)
	pct := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(d))/b.Elapsed().Seconds(), rate)
}

// BenchmarkBareExec is the baseline: the same no-op script started with os/exec.
func BenchmarkBareExec(b *testing.B) {
	_, noop := benchGateway(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := exec.Command(noop).Run(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat, "runs/s")
}

// BenchmarkRunSync runs the no-op service through the API and waits for the
// recorded result: checkout lookup, fresh run dir, exec, three store writes.
func BenchmarkRunSync(b *testing.B) {
	cl, _ := benchGateway(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		e, err := cl.Run(ctx, "noop", wire.RunRequest{})
		if err != nil || e.Status != execution.Succeeded {
			b.Fatalf("run: %v %+v", err, e)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat, "runs/s")
}

// BenchmarkRunAsync submits from 8 × GOMAXPROCS concurrent clients; each
// submission returns after the queued record is durably written (bbolt
// batch fsync). It reports accepted/s (submissions per second of the
// timed loop) and, once every accepted run is terminal, completed/s: runs
// divided by the time from the first submission to the last run's end.
func BenchmarkRunAsync(b *testing.B) {
	cl, _ := benchGateway(b)
	ctx := context.Background()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var ids []string
	b.SetParallelism(8) // 8 × GOMAXPROCS submitters
	first := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			e, err := cl.Run(ctx, "noop", wire.RunRequest{Async: true})
			if err != nil {
				b.Error(err)
				return
			}
			d := time.Since(start)
			mu.Lock()
			lat = append(lat, d)
			ids = append(ids, e.ID)
			mu.Unlock()
		}
	})
	b.StopTimer()
	reportLatency(b, lat, "accepted/s")
	var last time.Time
	for _, id := range ids {
		for {
			e, err := cl.Wait(ctx, id, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if e.Status.Terminal() {
				if e.Status != execution.Succeeded {
					b.Fatalf("execution %s %s: %s", id, e.Status, e.Reason)
				}
				if e.EndedAt.After(last) {
					last = *e.EndedAt
				}
				break
			}
		}
	}
	if len(ids) > 0 {
		b.ReportMetric(float64(len(ids))/last.Sub(first).Seconds(), "completed/s")
	}
}
