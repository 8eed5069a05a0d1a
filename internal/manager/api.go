package manager

import (
	"context"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/tunnel"
	"github.com/autogate/autogate/internal/wire"
)

type clusterID struct {
	ID string `path:"id" maxLength:"32"`
}

func (s *Server) registerClusters() {
	hapi := s.api
	huma.Register(hapi, s.api.Op(http.MethodGet, "/v1/clusters", "list-clusters", "list the registered clusters and their connection state", "clusters", auth.Read),
		func(ctx context.Context, in *httpapi.PageInput) (*struct{ Body wire.Page[wire.Cluster] }, error) {
			cs, err := s.Registry.List(ctx)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			for i := range cs {
				s.Hub.Overlay(&cs[i])
			}
			page, err := httpapi.PageOf(cs, func(c wire.Cluster) string { return c.ID }, *in)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &struct{ Body wire.Page[wire.Cluster] }{page}, nil
		})
	huma.Register(hapi, s.api.Op(http.MethodGet, "/v1/clusters/{id}", "get-cluster", "get a cluster's registry entry", "clusters", auth.Read),
		func(ctx context.Context, in *clusterID) (*struct{ Body wire.Cluster }, error) {
			c, err := s.Registry.Get(ctx, in.ID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			s.Hub.Overlay(&c)
			return &struct{ Body wire.Cluster }{c}, nil
		})
	create := s.api.Op(http.MethodPost, "/v1/clusters", "create-cluster",
		"register a cluster; the answer holds its credential, shown only this once", "clusters", auth.Manage)
	create.DefaultStatus = http.StatusCreated
	create.MaxBodyBytes = 16 << 10
	huma.Register(hapi, create, func(ctx context.Context, in *struct{ Body wire.CreateClusterRequest }) (*struct{ Body wire.CreatedCluster }, error) {
		c, err := s.Registry.Create(ctx, in.Body)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		s.Logger.InfoContext(ctx, "cluster registered", "cluster", c.ID, "user", httpapi.Principal(ctx).User)
		return &struct{ Body wire.CreatedCluster }{c}, nil
	})
	del := s.api.Op(http.MethodDelete, "/v1/clusters/{id}", "delete-cluster",
		"forget a cluster: revokes its credential and drops its connection", "clusters", auth.Manage)
	del.DefaultStatus = http.StatusNoContent
	huma.Register(hapi, del, func(ctx context.Context, in *clusterID) (*struct{}, error) {
		if err := s.Registry.Delete(ctx, in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		s.Hub.Drop(in.ID, fmt.Errorf("%w: cluster %s was deleted from the manager", tunnel.ErrUnauthorized, in.ID))
		s.Logger.InfoContext(ctx, "cluster deleted", "cluster", in.ID, "user", httpapi.Principal(ctx).User)
		return &struct{}{}, nil
	})
}
