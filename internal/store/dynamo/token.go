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
// prefix), and carries a MAC over all of them.
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
	After string `json:"a"`
	MAC   string `json:"m"`
}

const tokenVersion = 1

var tokenKey = []byte("autogate/store/dynamo page token v1")

func tokenMAC(t pageToken) string {
	m := hmac.New(sha256.New, tokenKey)
	fmt.Fprintf(m, "%d\x00%s\x00%s\x00%s\x00%s", t.V, t.C, t.K, t.P, t.After)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func encodeToken(cluster string, kind resource.Kind, prefix, after string) string {
	t := pageToken{V: tokenVersion, C: cluster, K: string(kind), P: prefix, After: after}
	t.MAC = tokenMAC(t)
	raw, err := json.Marshal(t)
	if err != nil {
		panic(fmt.Sprintf("page token of strings failed to encode: %v", err)) // cannot happen
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeToken returns the name a listing continues after, or
// store.ErrBadPageToken.
func decodeToken(tok, cluster string, kind resource.Kind, prefix string) (string, error) {
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
	case t.C != cluster || t.K != string(kind) || t.P != prefix:
		return bad("issued for another listing (cluster, kind or prefix differ)")
	case t.After == "" || !strings.HasPrefix(t.After, prefix):
		return bad("no position")
	}
	return t.After, nil
}
