package resource

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"ping", true},
		{"ping-2.v1_x", true},
		{"0abc", true},
		{strings.Repeat("a", MaxNameLen), true},
		{"", false},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"..", false},
		{"a..b", false},
		{".hidden", false},
		{"-flag", false},
		{"a/b", false},
		{"a\\b", false},
		{"a b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"Ping", false},
		{"p\u00e9ng", false},
		{"\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.name)
			if (err == nil) != tt.valid {
				t.Fatalf("ValidateName(%q) = %v, want valid=%v", tt.name, err, tt.valid)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestValidateRelPath(t *testing.T) {
	tests := []struct {
		path  string
		valid bool
	}{
		{"", true},
		{"main.py", true},
		{"dir/sub/main.py", true},
		{"./main.py", true},
		{"/etc/passwd", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/..", false},
		{"a\x00b", false},
		{"a\\..\\b", false},
	}
	for _, tt := range tests {
		if err := ValidateRelPath("p", tt.path); (err == nil) != tt.valid {
			t.Errorf("ValidateRelPath(%q) = %v, want valid=%v", tt.path, err, tt.valid)
		}
	}
}

func TestServiceValidate(t *testing.T) {
	good := Service{Meta: Meta{Name: "s"}, Type: Executable, Repository: "r", Filename: "run.sh"}
	tests := []struct {
		name   string
		mutate func(*Service)
		valid  bool
	}{
		{"good", func(*Service) {}, true},
		{"opentofu without filename", func(s *Service) { s.Type, s.Filename = OpenTofuPlan, "" }, true},
		{"bad type", func(s *Service) { s.Type = "perl" }, false},
		{"no filename", func(s *Service) { s.Filename = "" }, false},
		{"escaping working dir", func(s *Service) { s.WorkingDir = "../other" }, false},
		{"absolute filename", func(s *Service) { s.Filename = "/bin/sh" }, false},
		{"bad env name", func(s *Service) { s.Env = map[string]string{"A-B": "x"} }, false},
		{"unbound secret", func(s *Service) { s.Secrets = []SecretBinding{{Secret: "x"}} }, false},
		{"secret file with slash", func(s *Service) { s.Secrets = []SecretBinding{{Secret: "x", File: "a/b"}} }, false},
		{"negative timeout", func(s *Service) { s.TimeoutSeconds = -1 }, false},
		{"timeout over 12h", func(s *Service) { s.TimeoutSeconds = 13 * 3600 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.mutate(&s)
			if err := s.Validate(); (err == nil) != tt.valid {
				t.Errorf("Validate = %v, want valid=%v", err, tt.valid)
			}
		})
	}
}

func TestRepositoryValidate(t *testing.T) {
	tests := []struct {
		url, ref string
		valid    bool
	}{
		{"https://git.example.com/a.git", "main", true},
		{"/srv/git/a", "", true},
		{"ssh://git@example.com/a.git", "v1.2", true},
		{"relative/path", "", false},
		{"-uflag", "", false},
		{"https://x/a.git", "--upload-pack=evil", false},
		{"ftp://x/a", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		r := Repository{Meta: Meta{Name: "r"}, URL: tt.url, Reference: tt.ref}
		if err := r.Validate(); (err == nil) != tt.valid {
			t.Errorf("Repository{%q, %q}.Validate = %v, want valid=%v", tt.url, tt.ref, err, tt.valid)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"ping", "..", "a/b", "a\x00", strings.Repeat("z", 70), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateName(s) != nil {
			return
		}
		// Whatever passes must be safe as a path element and a key.
		if s == "" || len(s) > MaxNameLen || strings.ContainsAny(s, "/\\\x00 \n") || strings.Contains(s, "..") || s[0] == '.' || s[0] == '-' {
			t.Fatalf("ValidateName accepted unsafe %q", s)
		}
	})
}

func FuzzValidateRelPath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "/abs", "a/./b", "a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateRelPath("p", s) != nil {
			return
		}
		for _, part := range strings.Split(s, "/") {
			if part == ".." {
				t.Fatalf("accepted %q with ..", s)
			}
		}
		if strings.HasPrefix(s, "/") {
			t.Fatalf("accepted absolute %q", s)
		}
	})
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"services": KindService, "svc": KindService, "repositories": KindRepository,
		"repo": KindRepository, "Secret": KindSecret, "executions": KindExecution, "nodes": KindNode} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseKind("widgets"); err == nil {
		t.Error("ParseKind(widgets) succeeded")
	}
}
