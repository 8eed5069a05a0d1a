package manager

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/tunnel"
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
			return &struct{ Body wire.WhoAmI }{wire.WhoAmI{User: p.User, Role: string(p.Role), Cluster: s.Namespace, Node: s.Node}}, nil
		})
	s.registerUsers(hapi)
	s.registerClusters(hapi)
}

func (s *Server) registerUsers(hapi huma.API) {
	huma.Register(hapi, s.op(http.MethodGet, "/v1/users", "list-users", "list the manager's users", "users", auth.Manage),
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
	create := s.op(http.MethodPost, "/v1/users", "create-user", "create a manager user", "users", auth.Manage)
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
	del := s.op(http.MethodDelete, "/v1/users/{name}", "delete-user", "delete a manager user", "users", auth.Manage)
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

type clusterID struct {
	ID string `path:"id" maxLength:"32"`
}

func (s *Server) registerClusters(hapi huma.API) {
	huma.Register(hapi, s.op(http.MethodGet, "/v1/clusters", "list-clusters", "list the registered clusters and their connection state", "clusters", auth.Read),
		func(ctx context.Context, _ *struct{}) (*struct{ Body wire.Page[wire.Cluster] }, error) {
			cs, err := s.Registry.List(ctx)
			if err != nil {
				return nil, s.problem(ctx, "list-clusters", err)
			}
			for i := range cs {
				s.Hub.Overlay(&cs[i])
			}
			return &struct{ Body wire.Page[wire.Cluster] }{wire.Page[wire.Cluster]{Items: cs}}, nil
		})
	huma.Register(hapi, s.op(http.MethodGet, "/v1/clusters/{id}", "get-cluster", "get a cluster's registry entry", "clusters", auth.Read),
		func(ctx context.Context, in *clusterID) (*struct{ Body wire.Cluster }, error) {
			c, err := s.Registry.Get(ctx, in.ID)
			if err != nil {
				return nil, s.problem(ctx, "get-cluster", err)
			}
			s.Hub.Overlay(&c)
			return &struct{ Body wire.Cluster }{c}, nil
		})
	create := s.op(http.MethodPost, "/v1/clusters", "create-cluster",
		"register a cluster; the answer holds its credential, shown only this once", "clusters", auth.Manage)
	create.DefaultStatus = http.StatusCreated
	create.MaxBodyBytes = 16 << 10
	huma.Register(hapi, create, func(ctx context.Context, in *struct{ Body wire.CreateClusterRequest }) (*struct{ Body wire.CreatedCluster }, error) {
		c, err := s.Registry.Create(ctx, in.Body)
		if err != nil {
			return nil, s.problem(ctx, "create-cluster", err)
		}
		s.Logger.InfoContext(ctx, "cluster registered", "cluster", c.ID, "user", principal(ctx).User)
		return &struct{ Body wire.CreatedCluster }{c}, nil
	})
	del := s.op(http.MethodDelete, "/v1/clusters/{id}", "delete-cluster",
		"forget a cluster: revokes its credential and drops its connection", "clusters", auth.Manage)
	del.DefaultStatus = http.StatusNoContent
	huma.Register(hapi, del, func(ctx context.Context, in *clusterID) (*struct{}, error) {
		if err := s.Registry.Delete(ctx, in.ID); err != nil {
			return nil, s.problem(ctx, "delete-cluster", err)
		}
		s.Hub.Drop(in.ID, fmt.Errorf("%w: cluster %s was deleted from the manager", tunnel.ErrUnauthorized, in.ID))
		s.Logger.InfoContext(ctx, "cluster deleted", "cluster", in.ID, "user", principal(ctx).User)
		return &struct{}{}, nil
	})
}
