package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/wire"
)

func (s *Server) op(method, path, id, summary, tag string, action auth.Action) huma.Operation {
	return huma.Operation{
		OperationID:  id,
		Method:       method,
		Path:         path,
		Summary:      summary,
		Tags:         []string{tag},
		Security:     []map[string][]string{{"bearer": {}}},
		MaxBodyBytes: s.MaxBodyBytes,
		Metadata:     map[string]any{metaAction: action},
		Errors:       []int{400, 401, 403, 404, 409, 413, 422, 503},
	}
}

func (s *Server) register(hapi huma.API) {
	login := s.op(http.MethodPost, "/v1/login", "login", "log in", "auth", auth.Read)
	login.Security = nil
	login.Metadata = map[string]any{metaPublic: true}
	login.MaxBodyBytes = 16 << 10
	huma.Register(hapi, login, func(ctx context.Context, in *struct{ Body wire.LoginRequest }) (*struct{ Body wire.LoginResponse }, error) {
		tok, exp, err := s.Auth.Login(ctx, in.Body.Username, in.Body.Password)
		if err != nil {
			return nil, s.problem(ctx, "login", err)
		}
		p, err := s.Auth.Authenticate(ctx, tok)
		if err != nil {
			return nil, s.problem(ctx, "login", err)
		}
		return &struct{ Body wire.LoginResponse }{wire.LoginResponse{Token: tok, ExpiresAt: exp, User: p.User, Role: string(p.Role)}}, nil
	})
	huma.Register(hapi, s.op(http.MethodPost, "/v1/logout", "logout", "log out (revoke this token)", "auth", auth.Read),
		func(ctx context.Context, in *struct {
			Authorization string `header:"Authorization"`
		}) (*struct{}, error) {
			tok, _ := strings.CutPrefix(in.Authorization, "Bearer ")
			if err := s.Auth.Revoke(ctx, tok); err != nil {
				return nil, s.problem(ctx, "logout", err)
			}
			return &struct{}{}, nil
		})
	huma.Register(hapi, s.op(http.MethodGet, "/v1/whoami", "whoami", "show the caller", "auth", auth.Read),
		func(ctx context.Context, _ *struct{}) (*struct{ Body wire.WhoAmI }, error) {
			p := principal(ctx)
			return &struct{ Body wire.WhoAmI }{wire.WhoAmI{User: p.User, Role: string(p.Role), Cluster: s.Cluster, Node: s.Node}}, nil
		})
	s.registerUsers(hapi)
	crud[resource.Service](s, hapi, "services", resource.KindService)
	crud[resource.Decorator](s, hapi, "decorators", resource.KindDecorator)
	crud[resource.Repository](s, hapi, "repositories", resource.KindRepository)
	crud[resource.Secret](s, hapi, "secrets", resource.KindSecret)
	s.registerExecutions(hapi)
	huma.Register(hapi, s.op(http.MethodPost, "/v1/redrive", "redrive", "move dead-lettered executions back to the work queue", "executions", auth.Write),
		func(ctx context.Context, in *struct{ Body wire.RedriveRequest }) (*struct{ Body wire.RedriveResponse }, error) {
			max := in.Body.Max
			if max <= 0 {
				max = 100
			}
			n, err := s.Gateway.Redrive(ctx, max)
			if err != nil {
				return nil, s.problem(ctx, "redrive", err)
			}
			return &struct{ Body wire.RedriveResponse }{wire.RedriveResponse{Moved: n}}, nil
		})
	huma.Register(hapi, s.op(http.MethodGet, "/v1/nodes", "list-nodes", "list the cluster's nodes", "nodes", auth.Read),
		func(ctx context.Context, _ *struct{}) (*struct{ Body wire.Page[wire.Node] }, error) {
			if s.Nodes == nil {
				return nil, s.problem(ctx, "list-nodes", errNoNodes)
			}
			nodes, err := s.Nodes(ctx)
			if err != nil {
				return nil, s.problem(ctx, "list-nodes", err)
			}
			return &struct{ Body wire.Page[wire.Node] }{wire.Page[wire.Node]{Items: nodes}}, nil
		})
}

func (s *Server) registerUsers(hapi huma.API) {
	huma.Register(hapi, s.op(http.MethodGet, "/v1/users", "list-users", "list users", "users", auth.Manage),
		func(ctx context.Context, _ *struct{}) (*struct{ Body wire.Page[wire.User] }, error) {
			us, err := s.Auth.ListUsers(ctx)
			if err != nil {
				return nil, s.problem(ctx, "list-users", err)
			}
			out := wire.Page[wire.User]{Items: []wire.User{}}
			for _, u := range us {
				out.Items = append(out.Items, wire.User{Name: u.Name, Role: string(u.Role), CreatedAt: u.CreatedAt})
			}
			return &struct{ Body wire.Page[wire.User] }{out}, nil
		})
	create := s.op(http.MethodPost, "/v1/users", "create-user", "create a user", "users", auth.Manage)
	create.DefaultStatus = http.StatusCreated
	huma.Register(hapi, create, func(ctx context.Context, in *struct{ Body wire.CreateUserRequest }) (*struct{ Body wire.User }, error) {
		role, err := auth.ParseRole(in.Body.Role)
		if err != nil {
			return nil, s.problem(ctx, "create-user", err)
		}
		u, err := s.Auth.CreateUser(ctx, in.Body.Name, role, in.Body.Password)
		if err != nil {
			return nil, s.problem(ctx, "create-user", err)
		}
		return &struct{ Body wire.User }{wire.User{Name: u.Name, Role: string(u.Role), CreatedAt: u.CreatedAt}}, nil
	})
	del := s.op(http.MethodDelete, "/v1/users/{name}", "delete-user", "delete a user", "users", auth.Manage)
	del.DefaultStatus = http.StatusNoContent
	huma.Register(hapi, del, func(ctx context.Context, in *struct {
		Name string `path:"name" maxLength:"63"`
	}) (*struct{}, error) {
		if err := resource.ValidateName(in.Name); err != nil {
			return nil, s.problem(ctx, "delete-user", err)
		}
		if err := s.Auth.DeleteUser(ctx, in.Name); err != nil {
			return nil, s.problem(ctx, "delete-user", err)
		}
		return &struct{}{}, nil
	})
}

type listInput struct {
	Limit     int    `query:"limit" minimum:"0" maximum:"1000" doc:"page size (default 100)"`
	PageToken string `query:"pageToken" maxLength:"2048" doc:"token from a previous page"`
}

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
	huma.Register(hapi, s.op(http.MethodGet, base, "list-"+plural, "list "+plural, plural, auth.Read),
		func(ctx context.Context, in *listInput) (*struct{ Body wire.Page[PT] }, error) {
			objs, next, err := s.Gateway.Catalog.List(ctx, kind, store.ListOptions{Limit: in.Limit, PageToken: in.PageToken})
			if err != nil {
				return nil, s.problem(ctx, "list-"+plural, err)
			}
			page := wire.Page[PT]{Items: make([]PT, 0, len(objs)), NextPageToken: next}
			for _, o := range objs {
				page.Items = append(page.Items, o.(PT))
			}
			return &struct{ Body wire.Page[PT] }{page}, nil
		})
	huma.Register(hapi, s.op(http.MethodGet, base+"/{name}", "get-"+single, "get a "+single, plural, auth.Read),
		func(ctx context.Context, in *nameInput) (*struct{ Body PT }, error) {
			o, err := s.Gateway.Catalog.Get(ctx, kind, in.Name)
			if err != nil {
				return nil, s.problem(ctx, "get-"+single, err)
			}
			return &struct{ Body PT }{o.(PT)}, nil
		})
	create := s.op(http.MethodPost, base, "create-"+single, "create a "+single, plural, auth.Write)
	create.DefaultStatus = http.StatusCreated
	huma.Register(hapi, create, func(ctx context.Context, in *struct{ Body T }) (*struct{ Body PT }, error) {
		o := PT(&in.Body)
		o.GetMeta().Version = 0
		if err := s.Gateway.Create(ctx, o); err != nil {
			return nil, s.problem(ctx, "create-"+single, err)
		}
		return &struct{ Body PT }{o}, nil
	})
	huma.Register(hapi, s.op(http.MethodPut, base+"/{name}", "update-"+single, "replace a "+single+" (version required)", plural, auth.Write),
		func(ctx context.Context, in *struct {
			Name string `path:"name" maxLength:"256"`
			Body T
		}) (*struct{ Body PT }, error) {
			o := PT(&in.Body)
			if m := o.GetMeta(); m.Name == "" {
				m.Name = in.Name
			} else if m.Name != in.Name {
				return nil, s.problem(ctx, "update-"+single, errRename)
			}
			if err := s.Gateway.Update(ctx, o); err != nil {
				return nil, s.problem(ctx, "update-"+single, err)
			}
			return &struct{ Body PT }{o}, nil
		})
	del := s.op(http.MethodDelete, base+"/{name}", "delete-"+single, "delete a "+single, plural, auth.Write)
	del.DefaultStatus = http.StatusNoContent
	huma.Register(hapi, del, func(ctx context.Context, in *struct {
		Name    string `path:"name" maxLength:"256"`
		Version int64  `query:"version" minimum:"0" doc:"delete only if this is the current version"`
	}) (*struct{}, error) {
		if err := s.Gateway.Catalog.Delete(ctx, kind, in.Name, in.Version); err != nil {
			return nil, s.problem(ctx, "delete-"+single, err)
		}
		return &struct{}{}, nil
	})
}

var errRename = errors.Join(resource.ErrInvalid, errors.New("the name in the body differs from the one in the path; resources cannot be renamed"))

type execOut struct {
	Status int
	Body   *execution.Execution
}

// public strips what clients need not see from an execution.
func public(e *execution.Execution) *execution.Execution {
	if e == nil {
		return nil
	}
	c := *e
	c.SealedInputs = nil
	return &c
}

func (s *Server) registerExecutions(hapi huma.API) {
	run := s.op(http.MethodPost, "/v1/services/{name}/run", "run-service", "run a service", "executions", auth.Run)
	huma.Register(hapi, run, func(ctx context.Context, in *struct {
		Name string `path:"name" maxLength:"256"`
		Body wire.RunRequest
	}) (*execOut, error) {
		var typ resource.ServiceType
		if in.Body.Type != "" {
			t, err := resource.ParseServiceType(in.Body.Type)
			if err != nil {
				return nil, s.problem(ctx, "run-service", err)
			}
			typ = t
		}
		e, err := s.Gateway.Submit(ctx, gateway.RunRequest{
			Service: in.Name, Type: typ, Inputs: in.Body.Inputs, RequestKey: in.Body.RequestKey,
			Apply: in.Body.Apply, Submitter: principal(ctx).User,
		})
		if err != nil {
			return nil, s.problem(ctx, "run-service", err)
		}
		if in.Body.Async {
			return &execOut{Status: http.StatusAccepted, Body: public(e)}, nil
		}
		return s.wait(ctx, e.ID, in.Body.WaitSeconds)
	})
	huma.Register(hapi, s.op(http.MethodGet, "/v1/executions", "list-executions", "list executions, newest first", "executions", auth.Read),
		func(ctx context.Context, in *struct {
			listInput
			Status  string `query:"status" enum:"queued,running,succeeded,failed,timed_out,canceled,lost," doc:"only this status"`
			Service string `query:"service" maxLength:"63" doc:"only this service"`
		}) (*struct{ Body wire.ExecutionPage }, error) {
			page, err := s.listExecutions(ctx, in.Limit, in.PageToken, in.Status, in.Service)
			if err != nil {
				return nil, s.problem(ctx, "list-executions", err)
			}
			return &struct{ Body wire.ExecutionPage }{page}, nil
		})
	huma.Register(hapi, s.op(http.MethodGet, "/v1/executions/{id}", "get-execution", "get an execution", "executions", auth.Read),
		func(ctx context.Context, in *struct {
			ID string `path:"id" maxLength:"64"`
		}) (*struct{ Body *execution.Execution }, error) {
			e, err := s.Gateway.Catalog.Execution(ctx, in.ID)
			if err != nil {
				return nil, s.problem(ctx, "get-execution", err)
			}
			return &struct{ Body *execution.Execution }{public(e)}, nil
		})
	huma.Register(hapi, s.op(http.MethodGet, "/v1/executions/{id}/wait", "wait-execution", "wait for an execution to end", "executions", auth.Read),
		func(ctx context.Context, in *struct {
			ID      string `path:"id" maxLength:"64"`
			Timeout int    `query:"timeout" minimum:"0" maximum:"300" doc:"seconds to wait (default 60)"`
		}) (*execOut, error) {
			return s.wait(ctx, in.ID, in.Timeout)
		})
	huma.Register(hapi, s.op(http.MethodPost, "/v1/executions/{id}/cancel", "cancel-execution", "cancel an execution", "executions", auth.Run),
		func(ctx context.Context, in *struct {
			ID string `path:"id" maxLength:"64"`
		}) (*struct{ Body *execution.Execution }, error) {
			e, err := s.Gateway.Cancel(ctx, in.ID)
			if err != nil {
				return nil, s.problem(ctx, "cancel-execution", err)
			}
			return &struct{ Body *execution.Execution }{public(e)}, nil
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
		return nil, s.problem(ctx, "wait-execution", err)
	}
	st := http.StatusOK
	if !e.Status.Terminal() {
		st = http.StatusAccepted
	}
	return &execOut{Status: st, Body: public(e)}, nil
}

// listExecutions pages through executions, filtering by status and service
// through the catalog's indexes (Catalog.FindExecutions), so a filter reads
// the executions it selects, not the whole history. A filtered page may
// hold fewer items than asked for while a next-page token remains.
func (s *Server) listExecutions(ctx context.Context, limit int, token, status, service string) (wire.ExecutionPage, error) {
	want := store.ListOptions{Limit: limit}.EffectiveLimit()
	page := wire.ExecutionPage{Items: []*execution.Execution{}}
	f := catalog.ExecutionFilter{Status: execution.Status(status), Service: service}
	for scanned := 0; len(page.Items) < want && scanned < 10*store.MaxPageSize; {
		es, next, err := s.Gateway.Catalog.FindExecutions(ctx, f, store.ListOptions{Limit: want - len(page.Items), PageToken: token})
		if err != nil {
			return page, err
		}
		scanned += want - len(page.Items)
		for _, e := range es {
			page.Items = append(page.Items, public(e))
		}
		token = next
		if next == "" {
			break
		}
	}
	page.NextPageToken = token
	return page, nil
}
