package resource

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameLen is the longest resource name accepted, in bytes. It keeps keys
// well inside DynamoDB's 1 KB sort-key limit and file names inside NAME_MAX.
const MaxNameLen = 63

// MaxClusterLen is the longest cluster ID accepted, in bytes.
const MaxClusterLen = 40

// ErrInvalid is wrapped by every validation error so callers can branch on it.
var ErrInvalid = errors.New("invalid")

// ErrBadValue is the ErrInvalid of a well-formed request carrying a value
// that cannot be accepted (an empty secret, an input holding a NUL byte):
// the API answers 422 where other ErrInvalid errors answer 400.
var ErrBadValue = fmt.Errorf("%w", ErrInvalid)

// ValidateName reports whether s is a legal resource name: 1–63 characters of
// lower-case letters, digits, '-', '_' and '.', starting with a letter or
// digit. The rule rejects path separators, "..", control characters and
// anything a shell or file system would treat specially.
func ValidateName(s string) error {
	return validateIdent("name", s, MaxNameLen, true)
}

// ValidateCluster reports whether s is a legal cluster ID: 1–40 characters of
// lower-case letters, digits and '-', starting with a letter or digit. Cluster
// IDs name stacks, queues and key prefixes, so the alphabet is narrower.
func ValidateCluster(s string) error {
	return validateIdent("cluster ID", s, MaxClusterLen, false)
}

func validateIdent(what, s string, max int, allowDotUnderscore bool) error {
	switch {
	case s == "":
		return fmt.Errorf("%w %s: empty", ErrInvalid, what)
	case len(s) > max:
		return fmt.Errorf("%w %s: %d bytes, longer than %d", ErrInvalid, what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w %s %q: not UTF-8", ErrInvalid, what, s)
	case strings.Contains(s, ".."):
		return fmt.Errorf("%w %s %q: contains \"..\"", ErrInvalid, what, s)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '-' || allowDotUnderscore && (r == '_' || r == '.')
		}
		if !ok {
			return fmt.Errorf("%w %s %q: character %q at %d not allowed (use a-z, 0-9%s; start with a letter or digit)",
				ErrInvalid, what, s, r, i, map[bool]string{true: ", '-', '_', '.'", false: ", '-'"}[allowDotUnderscore])
		}
	}
	return nil
}

// ValidateRelPath reports whether p is a clean relative path that stays inside
// the directory it is joined to: no absolute paths, no "..", no control
// characters. It does not follow symlinks; the checkout code does that.
func ValidateRelPath(what, p string) error {
	if p == "" {
		return nil
	}
	if len(p) > 1024 {
		return fmt.Errorf("%w %s: longer than 1024 bytes", ErrInvalid, what)
	}
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "\\") {
		return fmt.Errorf("%w %s %q: must be relative", ErrInvalid, what, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("%w %s %q: must not contain \"..\"", ErrInvalid, what, p)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w %s %q: control character or backslash", ErrInvalid, what, p)
		}
	}
	return nil
}
