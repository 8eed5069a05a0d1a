// Package console serves the web console at /ui/: static assets embedded
// in the binary (plain HTML, CSS and hand-written ES modules; no build
// step, nothing fetched from a CDN, so `go build` alone gives a working
// console for air-gapped operators) and the sign-in session.
//
// The console is a client of the /v1 API like the CLI: its script calls
// the same operations, which apply the same role checks. Sign-in
// (POST /ui/session) checks the password exactly as POST /v1/login does
// (httpapi.API.Login) and puts the token in an HttpOnly, Secure,
// SameSite=Strict cookie, so the token rules (expiry, revocation when the
// user changes) govern the session. httpapi.API.Authenticate accepts that
// cookie when a request has no Authorization header and, for a
// state-changing method, only with the X-CSRF-Token header equal to the
// token's CSRF token (httpapi.CSRFToken), which the console reads from a
// second, script-readable cookie.
//
// Every /ui/ response carries a strict Content-Security-Policy (no inline
// script, no framing, only this origin), nosniff and no-referrer. The
// script inserts service output and every other datum with textContent,
// never as markup.
package console
