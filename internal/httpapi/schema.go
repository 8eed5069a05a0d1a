package httpapi

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// Replace is the body of a PUT that replaces a T named in the path: T's
// schema (registered as <T>Replace) without "name" among the required
// properties. The handler fills the name in from the path.
type Replace[T any] struct{ Value T }

// UnmarshalJSON decodes into Value.
func (b *Replace[T]) UnmarshalJSON(raw []byte) error { return json.Unmarshal(raw, &b.Value) }

// Schema is T's schema with "name" optional.
func (Replace[T]) Schema(r huma.Registry) *huma.Schema {
	return variant(r, reflect.TypeFor[T](), "Replace", func(s *huma.Schema) bool {
		n := len(s.Required)
		s.Required = slices.DeleteFunc(s.Required, func(p string) bool { return p == "name" })
		return len(s.Required) != n
	})
}

// View is a response body holding a T: T's schema without its write-only
// properties (registered as <T>View when it has any, else T's own), so
// clients see only what the server returns (a secret's value never is).
type View[T any] struct{ Value T }

// MarshalJSON encodes Value.
func (v View[T]) MarshalJSON() ([]byte, error) { return json.Marshal(v.Value) }

// Schema is T's schema without write-only properties.
func (View[T]) Schema(r huma.Registry) *huma.Schema {
	return variant(r, reflect.TypeFor[T](), "View", func(s *huma.Schema) bool {
		changed := false
		for name, p := range s.Properties {
			if p.WriteOnly {
				delete(s.Properties, name)
				s.Required = slices.DeleteFunc(s.Required, func(r string) bool { return r == name })
				changed = true
			}
		}
		return changed
	})
}

// variant registers a copy of t's schema changed by edit under t's name
// plus suffix and returns a reference to it; if edit changes nothing, the
// reference to t's own schema.
func variant(r huma.Registry, t reflect.Type, suffix string, edit func(*huma.Schema) bool) *huma.Schema {
	ref := r.Schema(t, true, "")
	base := r.SchemaFromRef(ref.Ref)
	if ref.Ref == "" || base == nil {
		return ref
	}
	cp := *base
	cp.Properties = maps.Clone(base.Properties)
	cp.Required = slices.Clone(base.Required)
	if !edit(&cp) {
		return ref
	}
	cp.PrecomputeMessages()
	i := strings.LastIndex(ref.Ref, "/")
	name := ref.Ref[i+1:] + suffix
	r.Map()[name] = &cp
	return &huma.Schema{Ref: ref.Ref[:i+1] + name}
}
