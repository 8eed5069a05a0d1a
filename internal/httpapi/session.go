package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/autogate/autogate/internal/wire"
)

// Browser sessions (the web console): the session cookie holds an ordinary
// API token, so the token rules (expiry, revocation by a change of the
// user) govern it exactly as they govern a bearer token. A request that
// carries no Authorization header is authenticated by the cookie; if its
// method changes state it must also carry CSRFHeader with CSRFToken of the
// cookie's token, else 403.
const (
	// SessionCookie holds the token: HttpOnly, Secure, SameSite=Strict.
	SessionCookie = "autogate_session"
	// CSRFCookie holds CSRFToken of the session's token, readable by the
	// console's script (not HttpOnly), which echoes it in CSRFHeader.
	CSRFCookie = "autogate_csrf"
	// CSRFHeader carries the CSRF token on state-changing requests.
	CSRFHeader = "X-CSRF-Token"
)

// CSRFToken is the CSRF token bound to a session token: an HMAC of a fixed
// label keyed by the token. It is stateless, so every node of a cluster
// (and a standby forwarding to the active) checks it alike; only a holder
// of the token can compute it, and it reveals nothing about the token.
func CSRFToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("autogate console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// stateChanging tells the methods that need a CSRF token with a cookie.
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// SessionToken is the token of r's session cookie, or "".
func SessionToken(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// credential is the token a request presents: its bearer token, else its
// session cookie's (with the CSRF rule); status and message are set when
// it is refused before the token is looked at.
func (a *API) credential(r *http.Request) (tok string, status int, msg string) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			return "", http.StatusUnauthorized, "missing bearer token; " + a.cfg.LoginHint
		}
		return tok, 0, ""
	}
	tok = SessionToken(r)
	if tok == "" {
		return "", http.StatusUnauthorized, "missing bearer token; " + a.cfg.LoginHint
	}
	if stateChanging(r.Method) {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(CSRFToken(tok))) != 1 {
			return "", http.StatusForbidden, "missing or wrong " + CSRFHeader + " header: a request authenticated by the session cookie that changes state must carry it"
		}
	}
	return tok, 0, ""
}

// Login checks a user's password and issues a token, as POST /v1/login
// and the console's sign-in both do.
func (a *API) Login(ctx context.Context, user, password string) (wire.LoginToken, error) {
	tok, exp, err := a.cfg.Auth.Login(ctx, user, password)
	if err != nil {
		return wire.LoginToken{}, err
	}
	p, err := a.cfg.Auth.Authenticate(ctx, tok)
	if err != nil {
		return wire.LoginToken{}, err
	}
	return wire.LoginToken{Token: tok, ExpiresAt: exp, User: p.User, Role: string(p.Role)}, nil
}

// Logout revokes a token.
func (a *API) Logout(ctx context.Context, token string) error { return a.cfg.Auth.Revoke(ctx, token) }
