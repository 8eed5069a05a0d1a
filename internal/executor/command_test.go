package executor

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestFormatArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		inputs map[string]any
		want   []string
	}{
		{"nothing", nil, nil, []string{}},
		{"args only", []string{"-v", "x"}, nil, []string{"-v", "x"}},
		{"sorted keys", nil, map[string]any{"b": "2", "a": "1"}, []string{"--a", "1", "--b", "2"}},
		{"string as is", nil, map[string]any{"s": `he said "hi" <b>`}, []string{"--s", `he said "hi" <b>`}},
		{"numbers", nil, map[string]any{"i": 42, "f": 1.5, "big": 1e21, "n": json.Number("7")}, []string{"--big", "1e+21", "--f", "1.5", "--i", "42", "--n", "7"}},
		{"bools and null", nil, map[string]any{"t": true, "f": false, "z": nil}, []string{"--f", "false", "--t", "true", "--z", "null"}},
		{"array and object", nil, map[string]any{"a": []any{1, "x&y"}, "o": map[string]any{"k": []any{}}}, []string{"--a", `[1,"x&y"]`, "--o", `{"k":[]}`}},
		{"args first", []string{"run"}, map[string]any{"k": "v"}, []string{"run", "--k", "v"}},
		{"empty string", nil, map[string]any{"e": ""}, []string{"--e", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := formatArgs(tt.args, tt.inputs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q want %q", got, tt.want)
			}
		})
	}
	if _, err := formatArgs(nil, map[string]any{"nan": math.NaN()}, nil); err == nil {
		t.Error("NaN input: got no error want one")
	}
}

// FuzzFormatArgs feeds JSON objects through formatArgs and checks that the
// argv has args first, then one "--key value" pair per input in key order,
// and that every value decodes back to the input.
func FuzzFormatArgs(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"a":"b"}`,
		`{"n":1,"f":-2.5e-7,"t":true,"z":null}`,
		`{"arr":[1,"two",{"three":3}],"obj":{"k":"<&>"}}`,
		`{"--x":"-y","":"empty key","uni":"héllo\u0000"}`,
	} {
		f.Add(seed, "arg")
	}
	f.Fuzz(func(t *testing.T, doc, arg string) {
		var inputs map[string]any
		if err := json.Unmarshal([]byte(doc), &inputs); err != nil {
			return
		}
		args := []string{arg}
		got, err := formatArgs(args, inputs, nil)
		if err != nil {
			t.Fatalf("formatArgs(%s): %v", doc, err)
		}
		if len(got) != len(args)+2*len(inputs) {
			t.Fatalf("len: got %d want %d", len(got), len(args)+2*len(inputs))
		}
		if got[0] != arg {
			t.Fatalf("first: got %q want %q", got[0], arg)
		}
		keys := make([]string, 0, len(inputs))
		for k := range inputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			flag, val := got[1+2*i], got[2+2*i]
			if flag != "--"+k {
				t.Fatalf("flag %d: got %q want %q", i, flag, "--"+k)
			}
			if s, ok := inputs[k].(string); ok {
				if val != s {
					t.Fatalf("value of %q: got %q want %q", k, val, s)
				}
				continue
			}
			var back any
			if err := json.Unmarshal([]byte(val), &back); err != nil {
				t.Fatalf("value of %q: %q is not JSON: %v", k, val, err)
			}
			if !reflect.DeepEqual(back, inputs[k]) {
				t.Fatalf("value of %q: %q decodes to %#v want %#v", k, val, back, inputs[k])
			}
			if strings.ContainsRune(val, '\n') {
				t.Fatalf("value of %q: %q spans lines", k, val)
			}
		}
	})
}

func TestInventory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		inputs    map[string]any
		wantInv   string
		wantLocal bool
		wantErr   bool
	}{
		{"default", nil, "localhost,", true, false},
		{"localhost string", map[string]any{"inventory": "localhost"}, "localhost,", true, false},
		{"hosts string", map[string]any{"inventory": " web1, web2 ,"}, "web1,web2,", false, false},
		{"hosts list", map[string]any{"inventory": []any{"a", "b"}}, "a,b,", false, false},
		{"localhost among others", map[string]any{"inventory": "localhost,db"}, "localhost,db,", false, false},
		{"empty", map[string]any{"inventory": " , "}, "", false, true},
		{"number", map[string]any{"inventory": 3}, "", false, true},
		{"list of numbers", map[string]any{"inventory": []any{1}}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, local, err := inventory(tt.inputs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v want error %v", err, tt.wantErr)
			}
			if inv != tt.wantInv || local != tt.wantLocal {
				t.Errorf("got (%q, %v) want (%q, %v)", inv, local, tt.wantInv, tt.wantLocal)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"tool*": "#!/bin/sh\n", "plain": ""})
	tests := []struct {
		name, file, path string
		wantOK           bool
	}{
		{"found", "tool", "/nonexistent:" + dir, true},
		{"not executable", "plain", dir, false},
		{"relative entries ignored", "tool", ".:" + dir[1:], false},
		{"absent", "tool", "/nonexistent", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := lookPath(tt.file, tt.path)
			if (err == nil) != tt.wantOK {
				t.Errorf("lookPath(%q, %q): got %v want found=%v", tt.file, tt.path, err, tt.wantOK)
			}
		})
	}
}

func TestFormatArgsOmitsSensitive(t *testing.T) {
	t.Parallel()
	got, err := formatArgs([]string{"x"}, map[string]any{"host": "h", "password": "hunter22", "token": 7}, []string{"password", "token", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x", "--host", "h"}; !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}
