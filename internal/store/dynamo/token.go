package dynamo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// A page token is base64url(JSON) of pageToken. It names the last record
// of the page it ends (After) and the listing it belongs to (cluster, kind,
// prefix, and the index and term of a ListIndex), and carries a MAC over
// all of them.
//
// The MAC key is a constant, so the MAC is an integrity check, not a
// secret: it turns garbage, truncation and hand-edited tokens into
// store.ErrBadPageToken instead of a DynamoDB validation error. A token
// cannot widen what a caller sees in any case: the partition a List reads
// is always computed from the request's own cluster and kind, and a token
// whose cluster, kind or prefix differ from the request's is refused, so
// the most a forged token can do is move the start inside the caller's own
// listing.
type pageToken struct {
	V     int    `json:"v"`
	C     string `json:"c"`
	K     string `json:"k"`
	P     string `json:"p,omitempty"`
	I     string `json:"i,omitempty"`
	T     string `json:"t,omitempty"`
	After string `json:"a"`
	MAC   string `json:"m"`
}

const tokenVersion = 1

var tokenKey = []byte("autogate/store/dynamo page token v1")

func tokenMAC(t pageToken) string {
	m := hmac.New(sha256.New, tokenKey)
	fmt.Fprintf(m, "%d\x00%s\x00%s\x00%s\x00%s", t.V, t.C, t.K, t.P, t.After)
	if t.I != "" || t.T != "" { // List tokens keep the MAC they had before indexes
		fmt.Fprintf(m, "\x00%s\x00%s", t.I, t.T)
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// listing is what a page token is bound to: a List (index "") or a
// ListIndex of one term.
type listing struct {
	cluster string
	kind    resource.Kind
	prefix  string
	index   store.Index
	term    string
}

func encodeToken(cluster string, kind resource.Kind, prefix, after string) string {
	return encodeListToken(listing{cluster: cluster, kind: kind, prefix: prefix}, after)
}

func decodeToken(tok, cluster string, kind resource.Kind, prefix string) (string, error) {
	return decodeListToken(tok, listing{cluster: cluster, kind: kind, prefix: prefix})
}

func encodeListToken(l listing, after string) string {
	t := pageToken{V: tokenVersion, C: l.cluster, K: string(l.kind), P: l.prefix, I: string(l.index), T: l.term, After: after}
	t.MAC = tokenMAC(t)
	raw, err := json.Marshal(t)
	if err != nil {
		panic(fmt.Sprintf("page token of strings failed to encode: %v", err)) // cannot happen
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeListToken returns the name listing l continues after, or
// store.ErrBadPageToken.
func decodeListToken(tok string, l listing) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %s", store.ErrBadPageToken, why)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return bad("not base64url")
	}
	var t pageToken
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return bad("not a page token")
	}
	switch {
	case t.V != tokenVersion:
		return bad(fmt.Sprintf("version %d, want %d", t.V, tokenVersion))
	case !hmac.Equal([]byte(t.MAC), []byte(tokenMAC(t))):
		return bad("checksum mismatch")
	case t.C != l.cluster || t.K != string(l.kind) || t.P != l.prefix || t.I != string(l.index) || t.T != l.term:
		return bad("issued for another listing (cluster, kind, prefix, index or term differ)")
	case t.After == "" || !strings.HasPrefix(t.After, l.prefix):
		return bad("no position")
	}
	return t.After, nil
}
