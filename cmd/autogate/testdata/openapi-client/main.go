// Command openapi-client drives a gateway through a client that
// oapi-codegen generated from the gateway's served OpenAPI document (the
// package agclient, generated next to this file by TestOpenAPIClient). It
// exits 1 with the reason at the first step that does not go as the
// document says, and prints "ok <step>" for each step that does.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"example.com/agclient/agclient"
)

func main() {
	server := flag.String("server", "", "gateway URL")
	caFile := flag.String("ca", "", "the gateway's CA certificate")
	password := flag.String("password", "", "admin's password")
	repo := flag.String("repo", "", "git repository holding hello.sh and sleep.sh")
	flag.Parse()
	if err := run(*server, *caFile, *password, *repo); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
}

func ptr[T any](v T) *T { return &v }

func run(server, caFile, password, repo string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: time.Minute}

	anon, err := agclient.NewClientWithResponses(server, agclient.WithHTTPClient(hc))
	if err != nil {
		return err
	}
	lr, err := anon.LoginWithResponse(ctx, agclient.LoginJSONRequestBody{Username: "admin", Password: password})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if lr.JSON200 == nil || lr.JSON200.Token == "" || lr.JSON200.Role != "admin" {
		return fmt.Errorf("login: %d %s", lr.StatusCode(), lr.Body)
	}
	fmt.Println("ok login")
	bearer := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+lr.JSON200.Token)
		return nil
	}
	c, err := agclient.NewClientWithResponses(server, agclient.WithHTTPClient(hc), agclient.WithRequestEditorFn(bearer))
	if err != nil {
		return err
	}

	rr, err := c.CreateRepositoryWithResponse(ctx, agclient.CreateRepositoryJSONRequestBody{Name: "r", Url: repo})
	if err != nil {
		return err
	}
	if rr.JSON201 == nil {
		return fmt.Errorf("create repository: %d %s", rr.StatusCode(), rr.Body)
	}
	for _, s := range []struct{ name, file string }{{"hello", "hello.sh"}, {"sleeper", "sleep.sh"}, {"third", "hello.sh"}} {
		sr, err := c.CreateServiceWithResponse(ctx, agclient.CreateServiceJSONRequestBody{
			Name: s.name, Type: agclient.ServiceType("executable"), Repository: "r", Filename: ptr(s.file)})
		if err != nil {
			return err
		}
		if sr.JSON201 == nil || sr.JSON201.Version == nil || *sr.JSON201.Version != 1 {
			return fmt.Errorf("create service %s: %v %d %s", s.name, err, sr.StatusCode(), sr.Body)
		}
	}
	fmt.Println("ok create")

	// Paging: one service a page, the token moving forward, absent at the end.
	var names []string
	var token *string
	for pages := 0; ; pages++ {
		if pages > 5 {
			return fmt.Errorf("list services: paging does not end (%v)", names)
		}
		lr, err := c.ListServicesWithResponse(ctx, &agclient.ListServicesParams{Limit: ptr(int64(1)), PageToken: token})
		if err != nil {
			return err
		}
		if lr.JSON200 == nil || lr.JSON200.Items == nil {
			return fmt.Errorf("list services: %d %s", lr.StatusCode(), lr.Body)
		}
		if n := len(*lr.JSON200.Items); n > 1 {
			return fmt.Errorf("list services: %d items on a page of limit 1", n)
		}
		for _, s := range *lr.JSON200.Items {
			names = append(names, s.Name)
		}
		if lr.JSON200.NextPageToken == nil {
			break
		}
		if token != nil && *token == *lr.JSON200.NextPageToken {
			return fmt.Errorf("list services: the page token did not move")
		}
		token = lr.JSON200.NextPageToken
	}
	if !slices.Equal(names, []string{"hello", "sleeper", "third"}) {
		return fmt.Errorf("list services paged: %v", names)
	}
	fmt.Println("ok list paging")

	// Async run: 202 with the queued execution, then poll to the end.
	run, err := c.RunServiceWithResponse(ctx, "hello", agclient.RunServiceJSONRequestBody{Async: ptr(true)})
	if err != nil {
		return err
	}
	if run.StatusCode() != http.StatusAccepted || run.JSON202 == nil {
		return fmt.Errorf("run hello async: %d %s", run.StatusCode(), run.Body)
	}
	hello, err := poll(ctx, c, run.JSON202.Id, "succeeded")
	if err != nil {
		return err
	}
	if hello.Stdout == nil || hello.Stdout.Data == nil || *hello.Stdout.Data != "hello\n" {
		return fmt.Errorf("hello's stdout: %+v", hello.Stdout)
	}
	fmt.Println("ok run async and poll")

	// A long run: wait answers 202 while it runs; cancel ends it.
	run, err = c.RunServiceWithResponse(ctx, "sleeper", agclient.RunServiceJSONRequestBody{Async: ptr(true)})
	if err != nil {
		return err
	}
	if run.JSON202 == nil {
		return fmt.Errorf("run sleeper async: %d %s", run.StatusCode(), run.Body)
	}
	sleeper := run.JSON202.Id
	wr, err := c.WaitExecutionWithResponse(ctx, sleeper, &agclient.WaitExecutionParams{Timeout: ptr(int64(1))})
	if err != nil {
		return err
	}
	if wr.StatusCode() != http.StatusAccepted || wr.JSON202 == nil || wr.JSON202.Id != sleeper {
		return fmt.Errorf("wait on sleeper: %d %s", wr.StatusCode(), wr.Body)
	}
	cr, err := c.CancelExecutionWithResponse(ctx, sleeper)
	if err != nil {
		return err
	}
	if cr.JSON200 == nil {
		return fmt.Errorf("cancel sleeper: %d %s", cr.StatusCode(), cr.Body)
	}
	if _, err := poll(ctx, c, sleeper, "canceled"); err != nil {
		return err
	}
	fmt.Println("ok cancel")

	// Executions page too, newest first.
	var ids []string
	token = nil
	for pages := 0; ; pages++ {
		if pages > 5 {
			return fmt.Errorf("list executions: paging does not end (%v)", ids)
		}
		er, err := c.ListExecutionsWithResponse(ctx, &agclient.ListExecutionsParams{Limit: ptr(int64(1)), PageToken: token})
		if err != nil {
			return err
		}
		if er.JSON200 == nil || er.JSON200.Items == nil || len(*er.JSON200.Items) > 1 {
			return fmt.Errorf("list executions: %d %s", er.StatusCode(), er.Body)
		}
		for _, e := range *er.JSON200.Items {
			ids = append(ids, e.Id)
		}
		if er.JSON200.NextPageToken == nil {
			break
		}
		token = er.JSON200.NextPageToken
	}
	if !slices.Equal(ids, []string{sleeper, hello.Id}) {
		return fmt.Errorf("list executions paged: %v, want [%s %s]", ids, sleeper, hello.Id)
	}
	fmt.Println("ok list executions paging")
	return nil
}

// poll gets the execution until its status is want (or another terminal one).
func poll(ctx context.Context, c *agclient.ClientWithResponses, id, want string) (*agclient.Execution, error) {
	for {
		gr, err := c.GetExecutionWithResponse(ctx, id)
		if err != nil {
			return nil, err
		}
		if gr.JSON200 == nil {
			return nil, fmt.Errorf("get execution %s: %d %s", id, gr.StatusCode(), gr.Body)
		}
		switch st := string(gr.JSON200.Status); st {
		case want:
			return gr.JSON200, nil
		case "queued", "running":
		default:
			return nil, fmt.Errorf("execution %s ended %s (%+v), want %s", id, st, gr.JSON200, want)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("execution %s: still not %s: %w", id, want, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
