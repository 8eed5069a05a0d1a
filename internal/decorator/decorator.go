// Package decorator compiles decorators (JSON Schema, draft 2020-12, via
// santhosh-tekuri/jsonschema/v6) and validates service inputs against them.
// Compilation never fetches anything: a $ref to a remote or file URL is an
// error, so a decorator cannot make the gateway reach the network or read
// local files. Top-level properties marked "writeOnly": true are sensitive:
// Redact replaces their values in what gets recorded.
package decorator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
)

// ErrInputs wraps every input-validation failure.
var ErrInputs = errors.New("inputs do not satisfy the decorator")

// Schema is a compiled decorator.
type Schema struct {
	sch       *jsonschema.Schema
	sensitive map[string]bool
	declared  map[string]bool // top-level property names
}

type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("decorators may not load external schemas (%s)", url)
}

// Compile compiles a decorator's schema document.
func Compile(doc map[string]any) (*Schema, error) {
	// Round-trip through jsonschema's decoder so numbers keep full precision.
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w schema: %v", resource.ErrInvalid, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w schema: %v", resource.ErrInvalid, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	c.AssertFormat()
	const url = "mem://decorator.json"
	if err := c.AddResource(url, v); err != nil {
		return nil, fmt.Errorf("%w schema: %v", resource.ErrInvalid, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%w schema: %v", resource.ErrInvalid, err)
	}
	s := &Schema{sch: sch, sensitive: map[string]bool{}, declared: map[string]bool{}}
	if props, ok := doc["properties"].(map[string]any); ok {
		for name, p := range props {
			s.declared[name] = true
			if pm, ok := p.(map[string]any); ok && pm["writeOnly"] == true {
				s.sensitive[name] = true
			}
		}
	}
	return s, nil
}

// Validate checks inputs against the schema. The error lists every violation
// with its JSON pointer, one per line.
func (s *Schema) Validate(inputs map[string]any) error {
	raw, err := json.Marshal(inputs)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInputs, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInputs, err)
	}
	err = s.sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%w: %v", ErrInputs, err)
	}
	var vs []Violation
	collect(ve.DetailedOutput(), s.sensitive, &vs)
	sort.Slice(vs, func(i, j int) bool { return vs[i].String() < vs[j].String() })
	if len(vs) == 0 {
		vs = []Violation{{Pointer: "/", Message: ve.Error()}}
	}
	return &InputsError{Violations: vs}
}

// Violation is one way the inputs break the schema: where (a JSON pointer
// into the inputs, "/" for the whole) and why.
type Violation struct {
	Pointer, Message string
}

func (v Violation) String() string { return v.Pointer + ": " + v.Message }

// InputsError lists every violation of the schema; it wraps ErrInputs, and
// the API shows each violation next to its field.
type InputsError struct {
	Violations []Violation
}

func (e *InputsError) Error() string {
	lines := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		lines[i] = v.String()
	}
	return fmt.Sprintf("%v: %s", ErrInputs, strings.Join(lines, "; "))
}

func (e *InputsError) Unwrap() error { return ErrInputs }

// collect lists the leaf errors of u. An error inside a sensitive input
// names only the failed keyword: the validator's messages may quote the
// value ("'…' does not match pattern"), and errors reach clients and logs.
func collect(u *jsonschema.OutputUnit, sensitive map[string]bool, out *[]Violation) {
	if u == nil {
		return
	}
	if u.Error != nil && len(u.Errors) == 0 {
		loc := u.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		top, _, _ := strings.Cut(strings.TrimPrefix(loc, "/"), "/")
		msg := u.Error.String()
		if sensitive[strings.ReplaceAll(strings.ReplaceAll(top, "~1", "/"), "~0", "~")] {
			kw := u.KeywordLocation[strings.LastIndex(u.KeywordLocation, "/")+1:]
			msg = fmt.Sprintf("fails %q (the value is sensitive and not shown)", kw)
		}
		*out = append(*out, Violation{Pointer: loc, Message: msg})
	}
	for i := range u.Errors {
		collect(&u.Errors[i], sensitive, out)
	}
}

// CheckInputs applies the rules every run's inputs follow, with or without
// a decorator (s may be nil), before anything is recorded: a key is a legal
// resource name (resource.ValidateName) or a property the decorator
// declares, and then still never empty, never starting with '-' and free
// of '=' and control characters, since keys become "--key" arguments; no
// string anywhere in the inputs (keys of nested objects included) holds a
// NUL byte, which no argv, environment or file name can carry.
func (s *Schema) CheckInputs(inputs map[string]any) error {
	for k, v := range inputs {
		if err := resource.ValidateName(k); err != nil && !(s != nil && s.declared[k]) {
			return fmt.Errorf("%w: input key %q: %v (or declare it in the decorator)", ErrInputs, k, err)
		}
		if k == "" || strings.HasPrefix(k, "-") || strings.ContainsFunc(k, func(r rune) bool { return r == '=' || r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("%w: input key %q: empty, starting with '-', or holding '=' or a control character", ErrInputs, k)
		}
		if nulIn(v) {
			return fmt.Errorf("%w: input %q: holds a NUL byte", ErrInputs, k)
		}
	}
	return nil
}

func nulIn(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.ContainsRune(x, 0)
	case []any:
		for _, e := range x {
			if nulIn(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || nulIn(e) {
				return true
			}
		}
	}
	return false
}

// Sensitive reports whether top-level input name is marked writeOnly.
func (s *Schema) Sensitive(name string) bool { return s != nil && s.sensitive[name] }

// Redact returns a copy of inputs with sensitive values replaced, and the
// plain-text values it replaced (so output can be scrubbed of them too).
func (s *Schema) Redact(inputs map[string]any) (map[string]any, []string) {
	out := make(map[string]any, len(inputs))
	var values []string
	for k, v := range inputs {
		if s.Sensitive(k) {
			out[k] = execution.Redacted
			if str, ok := v.(string); ok {
				values = append(values, str)
			} else if b, err := json.Marshal(v); err == nil {
				values = append(values, string(b))
			}
			continue
		}
		out[k] = v
	}
	return out, values
}
