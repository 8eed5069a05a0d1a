package decorator

import (
	"errors"
	"strings"
	"testing"

	"github.com/autogate/autogate/internal/execution"
)

var ping = map[string]any{
	"type":     "object",
	"required": []any{"host"},
	"properties": map[string]any{
		"host":     map[string]any{"type": "string", "minLength": 1},
		"count":    map[string]any{"type": "integer", "minimum": 1, "maximum": 10},
		"password": map[string]any{"type": "string", "writeOnly": true},
	},
	"additionalProperties": false,
}

func TestValidate(t *testing.T) {
	s, err := Compile(ping)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		inputs  map[string]any
		wantErr string // substring; "" means valid
	}{
		{"valid", map[string]any{"host": "10.0.0.1", "count": 3}, ""},
		{"valid minimal", map[string]any{"host": "h"}, ""},
		{"missing required", map[string]any{"count": 3}, "host"},
		{"wrong type", map[string]any{"host": "h", "count": "three"}, "/count"},
		{"out of range", map[string]any{"host": "h", "count": 11}, "/count"},
		{"float for integer", map[string]any{"host": "h", "count": 1.5}, "/count"},
		{"unknown property", map[string]any{"host": "h", "port": 22}, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(tt.inputs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInputs) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInputs mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name string
		doc  map[string]any
	}{
		{"remote ref", map[string]any{"$ref": "https://example.com/s.json"}},
		{"file ref", map[string]any{"$ref": "file:///etc/passwd"}},
		{"bad type", map[string]any{"type": 12}},
		{"bad pattern", map[string]any{"type": "string", "pattern": "("}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.doc); err == nil {
				t.Fatal("Compile succeeded, want an error")
			}
		})
	}
}

func TestRedact(t *testing.T) {
	s, err := Compile(ping)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"host": "h", "password": "s3cr3t"}
	got, values := s.Redact(in)
	if got["password"] != execution.Redacted || got["host"] != "h" {
		t.Errorf("Redact = %v", got)
	}
	if len(values) != 1 || values[0] != "s3cr3t" {
		t.Errorf("Redact values = %v, want [s3cr3t]", values)
	}
	if in["password"] != "s3cr3t" {
		t.Error("Redact changed its input")
	}
}

func FuzzValidate(f *testing.F) {
	s, err := Compile(ping)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("10.0.0.1", int64(3), "pw")
	f.Add("", int64(-1), "")
	f.Add("\x00", int64(1<<40), "\xff")
	f.Fuzz(func(t *testing.T, host string, count int64, pw string) {
		in := map[string]any{"host": host, "count": count, "password": pw}
		err := s.Validate(in)
		valid := host != "" && count >= 1 && count <= 10
		if valid != (err == nil) {
			t.Fatalf("Validate(%q, %d) = %v, want valid=%v", host, count, err, valid)
		}
		red, _ := s.Redact(in)
		if red["password"] != execution.Redacted {
			t.Fatal("password not redacted")
		}
	})
}

func TestCheckInputs(t *testing.T) {
	t.Parallel()
	s, err := Compile(map[string]any{"type": "object", "properties": map[string]any{
		"hostName": map[string]any{"type": "string"}, "x=y": map[string]any{}, "-v": map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		schema  *Schema
		inputs  map[string]any
		wantErr string
	}{
		{"plain names", nil, map[string]any{"host": "h", "count": 3, "router_pass": "x", "a.b-c": true}, ""},
		{"declared property name", s, map[string]any{"hostName": "h"}, ""},
		{"undeclared upper case", nil, map[string]any{"hostName": "h"}, `input key "hostName"`},
		{"empty key", nil, map[string]any{"": "v"}, `input key ""`},
		{"equals in key", nil, map[string]any{"x=y": "v"}, `input key "x=y"`},
		{"declared but holds '='", s, map[string]any{"x=y": "v"}, "holding '='"},
		{"declared but starts with '-'", s, map[string]any{"-v": "v"}, "starting with '-'"},
		{"NUL in a value", nil, map[string]any{"host": "a\x00b"}, `input "host": holds a NUL byte`},
		{"NUL deep inside", nil, map[string]any{"list": []any{map[string]any{"k": "a\x00"}}}, "NUL"},
		{"NUL in a nested key", nil, map[string]any{"obj": map[string]any{"a\x00": 1}}, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.schema.CheckInputs(tt.inputs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInputs) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v want ErrInputs mentioning %q", err, tt.wantErr)
			}
		})
	}
}
