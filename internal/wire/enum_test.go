package wire_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

func strs[T ~string](vs []T) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return strings.Join(out, ",")
}

// The enum tags the OpenAPI document shows are the domain's own lists.
func TestEnumTagsMatchTheDomain(t *testing.T) {
	roles := strs([]auth.Role{auth.Admin, auth.Operator, auth.Viewer})
	for _, r := range strings.Split(roles, ",") {
		if _, err := auth.ParseRole(r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		typ   any
		field string
		want  string
	}{
		{resource.Service{}, "Type", strs(resource.ServiceTypes)},
		{wire.RunRequest{}, "Type", strs(resource.ServiceTypes)},
		{wire.Execution{}, "ServiceType", strs(resource.ServiceTypes)},
		{wire.Execution{}, "Status", strs(execution.Statuses)},
		{wire.User{}, "Role", roles},
		{wire.WhoAmI{}, "Role", roles},
		{wire.LoginToken{}, "Role", roles},
		{wire.CreateUserRequest{}, "Role", roles},
		{wire.UpdateUserRequest{}, "Role", roles},
		{wire.Cluster{}, "Status", strs([]wire.ClusterStatus{wire.ClusterConnected, wire.ClusterStale, wire.ClusterDisconnected})},
	}
	for _, tt := range tests {
		f, ok := reflect.TypeOf(tt.typ).FieldByName(tt.field)
		if !ok {
			t.Fatalf("%T has no field %s", tt.typ, tt.field)
		}
		if got := f.Tag.Get("enum"); got != tt.want {
			t.Errorf("%T.%s enum = %q, want %q", tt.typ, tt.field, got, tt.want)
		}
	}
}
