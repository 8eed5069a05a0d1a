package server

import (
	"net"
	"net/url"
	"strings"
	"testing"
)

// The advertised address is where standbys forward to: it must name this
// node, never an unspecified host.
func TestListenAdvertisesOwnAddress(t *testing.T) {
	for _, tc := range []struct {
		listen, advertise string
		plaintext         bool
		wantScheme        string
	}{
		{"127.0.0.1:0", "", false, "https"},
		{"0.0.0.0:0", "", false, "https"},
		{":0", "", true, "http"},
		{"127.0.0.1:0", "https://gw-3.internal:8443", false, "https"},
	} {
		ep, err := listen(tc.listen, tc.advertise, tc.plaintext)
		if err != nil {
			t.Fatal(err)
		}
		ep.ln.Close()
		if tc.advertise != "" {
			if ep.advertise != tc.advertise {
				t.Errorf("listen %s advertise %s: got %s", tc.listen, tc.advertise, ep.advertise)
			}
			continue
		}
		u, err := url.Parse(ep.advertise)
		if err != nil || u.Scheme != tc.wantScheme {
			t.Fatalf("listen %s: advertise %q, want a %s URL", tc.listen, ep.advertise, tc.wantScheme)
		}
		ip := net.ParseIP(u.Hostname())
		if ip == nil || ip.IsUnspecified() || !strings.HasSuffix(u.Host, ":"+portOf(t, ep.ln.Addr())) {
			t.Errorf("listen %s: advertise %q, want this host's address and the bound port", tc.listen, ep.advertise)
		}
	}
}

func portOf(t *testing.T, a net.Addr) string {
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
