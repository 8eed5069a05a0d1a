package httpapi

import "testing"

func TestPointerPath(t *testing.T) {
	tests := []struct{ ptr, want string }{
		{"/", ""},
		{"", ""},
		{"/count", ".count"},
		{"/hosts/0", ".hosts[0]"},
		{"/a/b/12/c", ".a.b[12].c"},
		{"/a~1b/c~0d", ".a/b.c~d"},
	}
	for _, tt := range tests {
		t.Run(tt.ptr, func(t *testing.T) {
			if got := pointerPath(tt.ptr); got != tt.want {
				t.Errorf("pointerPath(%q) = %q, want %q", tt.ptr, got, tt.want)
			}
		})
	}
}

func TestCSRFToken(t *testing.T) {
	a, b := CSRFToken("agt_one"), CSRFToken("agt_two")
	if a == b || a != CSRFToken("agt_one") || len(a) != 43 {
		t.Errorf("CSRFToken: %q, %q; want distinct, stable, 32 bytes base64url", a, b)
	}
	for _, tok := range []string{"agt_one", "agt_two"} {
		if c := CSRFToken(tok); c == tok || len(c) == 0 {
			t.Errorf("CSRFToken(%q) = %q", tok, c)
		}
	}
}

func TestStateChanging(t *testing.T) {
	for m, want := range map[string]bool{"GET": false, "HEAD": false, "OPTIONS": false, "POST": true, "PUT": true, "PATCH": true, "DELETE": true} {
		if got := stateChanging(m); got != want {
			t.Errorf("stateChanging(%s) = %v, want %v", m, got, want)
		}
	}
}
