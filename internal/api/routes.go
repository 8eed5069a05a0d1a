package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/wire"
)

func (s *Server) register() {
	hapi := s.api
	crud[resource.Service](s, hapi, "services", resource.KindService)
	crud[resource.Decorator](s, hapi, "decorators", resource.KindDecorator)
	crud[resource.Repository](s, hapi, "repositories", resource.KindRepository)
	crud[resource.Secret](s, hapi, "secrets", resource.KindSecret)
	s.registerExecutions(hapi)
	s.registerOutput(hapi)
	huma.Register(hapi, s.api.Op(http.MethodPost, "/v1/redrive", "redrive", "move dead-lettered executions back to the work queue", "executions", auth.Write),
		func(ctx context.Context, in *struct{ Body wire.RedriveRequest }) (*struct{ Body wire.RedriveResult }, error) {
			max := in.Body.Max
			if max <= 0 {
				max = 100
			}
			n, err := s.Gateway.Redrive(ctx, max)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{ Body wire.RedriveResult }{wire.RedriveResult{Moved: n}}, nil
		})
	huma.Register(hapi, s.api.Op(http.MethodGet, "/v1/nodes", "list-nodes", "list the cluster's nodes", "nodes", auth.Read),
		func(ctx context.Context, in *PageInput) (*struct{ Body wire.Page[wire.Node] }, error) {
			if s.Nodes == nil {
				return nil, s.problem(ctx, errNoNodes)
			}
			nodes, err := s.Nodes(ctx)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			page, err := httpapi.PageOf(nodes, func(n wire.Node) string { return n.Kind + "/" + n.ID }, *in)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{ Body wire.Page[wire.Node] }{page}, nil
		})
}

// PageInput is the paging of every list operation.
type PageInput = httpapi.PageInput

// view is a resource as responses show it (httpapi.View: no write-only
// fields in the schema).
type view[T any] = httpapi.View[T]

type nameInput struct {
	Name string `path:"name" maxLength:"256"`
}

// crud registers list, get, create, update and delete for one kind.
func crud[T any, PT interface {
	*T
	resource.Object
}](s *Server, hapi huma.API, plural string, kind resource.Kind) {
	single := string(kind)
	base := "/v1/" + plural
	huma.Register(hapi, s.api.Op(http.MethodGet, base, "list-"+plural, "list "+plural, plural, auth.Read),
		func(ctx context.Context, in *PageInput) (*struct{ Body wire.Page[view[PT]] }, error) {
			objs, next, err := s.Gateway.List(ctx, kind, store.ListOptions{Limit: in.Limit, PageToken: in.PageToken})
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			page := wire.Page[view[PT]]{Items: make([]view[PT], 0, len(objs)), NextPageToken: next}
			for _, o := range objs {
				page.Items = append(page.Items, view[PT]{Value: o.(PT)})
			}
			return &struct{ Body wire.Page[view[PT]] }{page}, nil
		})
	huma.Register(hapi, s.api.Op(http.MethodGet, base+"/{name}", "get-"+single, "get a "+single, plural, auth.Read),
		func(ctx context.Context, in *nameInput) (*struct{ Body view[PT] }, error) {
			o, err := s.Gateway.Get(ctx, kind, in.Name)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{ Body view[PT] }{view[PT]{Value: o.(PT)}}, nil
		})
	create := s.api.Op(http.MethodPost, base, "create-"+single, "create a "+single, plural, auth.Write)
	create.DefaultStatus = http.StatusCreated
	huma.Register(hapi, create, func(ctx context.Context, in *struct{ Body T }) (*struct{ Body view[PT] }, error) {
		o := PT(&in.Body)
		o.GetMeta().Version = 0
		if err := s.Gateway.Create(ctx, o); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &struct{ Body view[PT] }{view[PT]{Value: o}}, nil
	})
	huma.Register(hapi, s.api.Op(http.MethodPut, base+"/{name}", "update-"+single, "replace a "+single+" (version required)", plural, auth.Write),
		func(ctx context.Context, in *struct {
			Name string `path:"name" maxLength:"256"`
			Body httpapi.Replace[T]
		}) (*struct{ Body view[PT] }, error) {
			o := PT(&in.Body.Value)
			if m := o.GetMeta(); m.Name == "" {
				m.Name = in.Name
			} else if m.Name != in.Name {
				return nil, s.problem(ctx, errRename)
			}
			if err := s.Gateway.Update(ctx, o); err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{ Body view[PT] }{view[PT]{Value: o}}, nil
		})
	del := s.api.Op(http.MethodDelete, base+"/{name}", "delete-"+single, "delete a "+single, plural, auth.Write)
	del.DefaultStatus = http.StatusNoContent
	huma.Register(hapi, del, func(ctx context.Context, in *struct {
		Name    string `path:"name" maxLength:"256"`
		Version int64  `query:"version" minimum:"0" doc:"delete only if this is the current version"`
	}) (*struct{}, error) {
		if err := s.Gateway.Delete(ctx, kind, in.Name, in.Version); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &struct{}{}, nil
	})
}

var errRename = fmt.Errorf("%w: the name in the body differs from the one in the path; resources cannot be renamed", resource.ErrInvalid)

type execOut struct {
	Status int
	Body   *wire.Execution
}

func (s *Server) registerExecutions(hapi huma.API) {
	run := s.api.Op(http.MethodPost, "/v1/services/{name}/run", "run-service", "run a service", "executions", auth.Run)
	run.Responses = s.api.Accepted(reflect.TypeFor[wire.Execution](),
		"Queued (async) or still running after waitSeconds: the execution as it is now; wait on /v1/executions/{id}/wait.")
	huma.Register(hapi, run, func(ctx context.Context, in *struct {
		Name string `path:"name" maxLength:"256"`
		Body wire.RunRequest
	}) (*execOut, error) {
		var typ resource.ServiceType
		if in.Body.Type != "" {
			t, err := resource.ParseServiceType(in.Body.Type)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			typ = t
		}
		e, err := s.Gateway.Submit(ctx, gateway.RunRequest{
			Service: in.Name, Type: typ, Inputs: in.Body.Inputs, RequestKey: in.Body.RequestKey,
			Apply: in.Body.Apply, Submitter: principal(ctx).User,
		})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		if in.Body.Async {
			return &execOut{Status: http.StatusAccepted, Body: wire.ExecutionOf(e)}, nil
		}
		return s.wait(ctx, e.ID, in.Body.WaitSeconds)
	})
	huma.Register(hapi, s.api.Op(http.MethodGet, "/v1/executions", "list-executions", "list executions, newest first", "executions", auth.Read),
		func(ctx context.Context, in *struct {
			PageInput
			Status  string `query:"status" enum:"queued,running,succeeded,failed,timed_out,canceled,lost" doc:"only this status"`
			Service string `query:"service" maxLength:"63" doc:"only this service"`
		}) (*struct{ Body wire.ExecutionPage }, error) {
			page, err := s.listExecutions(ctx, in.Limit, in.PageToken, in.Status, in.Service)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{ Body wire.ExecutionPage }{page}, nil
		})
	huma.Register(hapi, s.api.Op(http.MethodGet, "/v1/executions/{id}", "get-execution", "get an execution", "executions", auth.Read),
		func(ctx context.Context, in *struct {
			ID string `path:"id" maxLength:"64"`
		}) (*struct{ Body *wire.Execution }, error) {
			e, err := s.Gateway.Execution(ctx, in.ID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{ Body *wire.Execution }{wire.ExecutionOf(e)}, nil
		})
	wait := s.api.Op(http.MethodGet, "/v1/executions/{id}/wait", "wait-execution", "wait for an execution to end", "executions", auth.Read)
	wait.Responses = s.api.Accepted(reflect.TypeFor[wire.Execution](), "Still running after timeout seconds: the execution as it is now; wait again.")
	huma.Register(hapi, wait,
		func(ctx context.Context, in *struct {
			ID      string `path:"id" maxLength:"64"`
			Timeout int    `query:"timeout" minimum:"0" maximum:"300" doc:"seconds to wait (default 60)"`
		}) (*execOut, error) {
			return s.wait(ctx, in.ID, in.Timeout)
		})
	huma.Register(hapi, s.api.Op(http.MethodPost, "/v1/executions/{id}/cancel", "cancel-execution", "cancel an execution", "executions", auth.Run),
		func(ctx context.Context, in *struct {
			ID string `path:"id" maxLength:"64"`
		}) (*struct{ Body *wire.Execution }, error) {
			e, err := s.Gateway.Cancel(ctx, in.ID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{ Body *wire.Execution }{wire.ExecutionOf(e)}, nil
		})
}

// wait holds the request until the execution ends or seconds pass (default
// 60); 200 with a terminal execution, else 202 with its current state.
func (s *Server) wait(ctx context.Context, id string, seconds int) (*execOut, error) {
	if seconds <= 0 {
		seconds = 60
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second)
	defer cancel()
	e, err := s.Gateway.Wait(wctx, id)
	if err != nil && !(errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && e != nil) {
		return nil, s.problem(ctx, err)
	}
	st := http.StatusOK
	if !e.Status.Terminal() {
		st = http.StatusAccepted
	}
	return &execOut{Status: st, Body: wire.ExecutionOf(e)}, nil
}

// listExecutions pages through executions, filtering by status and service.
func (s *Server) listExecutions(ctx context.Context, limit int, token, status, service string) (wire.ExecutionPage, error) {
	f := gateway.ExecutionFilter{Service: service}
	if status != "" {
		st, err := execution.ParseStatus(status)
		if err != nil {
			return wire.ExecutionPage{}, err
		}
		f.Status = st
	}
	es, next, err := s.Gateway.ListExecutions(ctx, f, store.ListOptions{Limit: limit, PageToken: token})
	if err != nil {
		return wire.ExecutionPage{}, err
	}
	page := wire.ExecutionPage{Items: make([]*wire.Execution, 0, len(es)), NextPageToken: next}
	for _, e := range es {
		page.Items = append(page.Items, wire.ExecutionOf(e))
	}
	return page, nil
}
