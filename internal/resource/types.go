package resource

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Kind names a type of stored resource.
type Kind string

// The resource kinds. Users and tokens are stored like resources but never
// exported or applied.
const (
	KindService    Kind = "service"
	KindDecorator  Kind = "decorator"
	KindRepository Kind = "repository"
	KindSecret     Kind = "secret"
	KindExecution  Kind = "execution"
	KindUser       Kind = "user"
	KindToken      Kind = "token"
	KindNode       Kind = "node"
)

// Kinds lists the user-managed kinds in dependency order: what a later kind
// refers to comes first, so apply creates them in this order.
var Kinds = []Kind{KindSecret, KindRepository, KindDecorator, KindService}

// ParseKind maps a CLI noun (singular or plural) to a Kind.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "service", "services", "svc":
		return KindService, nil
	case "decorator", "decorators":
		return KindDecorator, nil
	case "repository", "repositories", "repo", "repos":
		return KindRepository, nil
	case "secret", "secrets":
		return KindSecret, nil
	case "execution", "executions", "exec":
		return KindExecution, nil
	case "user", "users":
		return KindUser, nil
	case "node", "nodes":
		return KindNode, nil
	}
	return "", fmt.Errorf("%w kind %q: want service, decorator, repository, secret, execution, user or node", ErrInvalid, s)
}

// Meta is the bookkeeping every stored resource carries. Version starts at 1
// and grows by one on every update; an update naming an older version is
// rejected with a conflict.
type Meta struct {
	Name      string    `json:"name"`
	Version   int64     `json:"version,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// ServiceType is how a service's entry file is run.
type ServiceType string

// The service types.
const (
	PythonScript    ServiceType = "python-script"
	AnsiblePlaybook ServiceType = "ansible-playbook"
	OpenTofuPlan    ServiceType = "opentofu-plan"
	Executable      ServiceType = "executable"
)

// ServiceTypes lists every service type.
var ServiceTypes = []ServiceType{PythonScript, AnsiblePlaybook, OpenTofuPlan, Executable}

// ParseServiceType validates s as a service type.
func ParseServiceType(s string) (ServiceType, error) {
	for _, t := range ServiceTypes {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w service type %q: want python-script, ansible-playbook, opentofu-plan or executable", ErrInvalid, s)
}

// SecretBinding hands one stored secret to a service, as an environment
// variable, as a file in the run's working directory, or both.
type SecretBinding struct {
	Secret string `json:"secret"`
	Env    string `json:"env,omitempty"`
	File   string `json:"file,omitempty"`
}

// Service is an automation service: which repository holds its code, which
// file to run and how, and what its inputs must look like.
type Service struct {
	Meta
	Type       ServiceType `json:"type" enum:"python-script,ansible-playbook,opentofu-plan,executable"`
	Repository string      `json:"repository"`
	// WorkingDir is relative to the repository root; the entry file and the
	// requirements file are relative to it.
	WorkingDir   string `json:"workingDir,omitempty"`
	Filename     string `json:"filename,omitempty"`
	Decorator    string `json:"decorator,omitempty"`
	Requirements string `json:"requirements,omitempty"`
	// Args are passed to the entry file before the inputs (executable and
	// python-script only).
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Secrets []SecretBinding   `json:"secrets,omitempty"`
	// TimeoutSeconds bounds one run; 0 means DefaultServiceTimeout.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// Retryable lets a run whose runner died be started again. Network
	// automation is rarely idempotent, so the default is false.
	Retryable   bool   `json:"retryable,omitempty"`
	Description string `json:"description,omitempty"`
}

// DefaultServiceTimeout bounds a run whose service sets no timeout.
const DefaultServiceTimeout = 5 * time.Minute

// MaxServiceTimeout is the longest timeout a service may declare (12 h); SQS
// visibility and Lambda limits are derived from it.
const MaxServiceTimeout = 12 * time.Hour

// Timeout returns the service's run timeout.
func (s *Service) Timeout() time.Duration {
	if s.TimeoutSeconds <= 0 {
		return DefaultServiceTimeout
	}
	return time.Duration(s.TimeoutSeconds) * time.Second
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Validate checks every field of s.
func (s *Service) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if _, err := ParseServiceType(string(s.Type)); err != nil {
		return fmt.Errorf("service %s: %w", s.Name, err)
	}
	if err := ValidateName(s.Repository); err != nil {
		return fmt.Errorf("service %s: repository: %w", s.Name, err)
	}
	if s.Decorator != "" {
		if err := ValidateName(s.Decorator); err != nil {
			return fmt.Errorf("service %s: decorator: %w", s.Name, err)
		}
	}
	if s.Filename == "" && s.Type != OpenTofuPlan {
		return fmt.Errorf("%w service %s: filename is required", ErrInvalid, s.Name)
	}
	for what, p := range map[string]string{"workingDir": s.WorkingDir, "filename": s.Filename, "requirements": s.Requirements} {
		if err := ValidateRelPath(what, p); err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
	}
	if s.TimeoutSeconds < 0 || time.Duration(s.TimeoutSeconds)*time.Second > MaxServiceTimeout {
		return fmt.Errorf("%w service %s: timeoutSeconds %d out of range 0..%d", ErrInvalid, s.Name, s.TimeoutSeconds, int(MaxServiceTimeout.Seconds()))
	}
	for k := range s.Env {
		if !envName.MatchString(k) {
			return fmt.Errorf("%w service %s: environment variable name %q", ErrInvalid, s.Name, k)
		}
	}
	for _, b := range s.Secrets {
		if err := ValidateName(b.Secret); err != nil {
			return fmt.Errorf("service %s: secret binding: %w", s.Name, err)
		}
		if b.Env == "" && b.File == "" {
			return fmt.Errorf("%w service %s: secret %s is bound to neither env nor file", ErrInvalid, s.Name, b.Secret)
		}
		if b.Env != "" && !envName.MatchString(b.Env) {
			return fmt.Errorf("%w service %s: secret %s: environment variable name %q", ErrInvalid, s.Name, b.Secret, b.Env)
		}
		if b.File != "" {
			if err := ValidateName(b.File); err != nil {
				return fmt.Errorf("service %s: secret %s: file: %w", s.Name, b.Secret, err)
			}
		}
	}
	if len(s.Args) > 256 {
		return fmt.Errorf("%w service %s: more than 256 args", ErrInvalid, s.Name)
	}
	return nil
}

// Decorator is a JSON Schema (draft 2020-12) that a service's inputs must
// satisfy before anything runs. Properties marked "writeOnly": true are
// treated as sensitive: they are redacted from recorded inputs.
type Decorator struct {
	Meta
	Schema      map[string]any `json:"schema"`
	Description string         `json:"description,omitempty"`
}

// Validate checks the decorator's name; the schema itself is compiled by the
// decorator package.
func (d *Decorator) Validate() error {
	if err := ValidateName(d.Name); err != nil {
		return fmt.Errorf("decorator: %w", err)
	}
	if d.Schema == nil {
		return fmt.Errorf("%w decorator %s: schema is required", ErrInvalid, d.Name)
	}
	return nil
}

// Repository is where a service's code comes from: a git URL or a local path,
// checked out at Reference (a branch, tag or commit).
type Repository struct {
	Meta
	URL       string `json:"url"`
	Reference string `json:"reference,omitempty"`
	// CredentialSecret names a secret holding an HTTPS token or password for URL.
	CredentialSecret string `json:"credentialSecret,omitempty"`
	Description      string `json:"description,omitempty"`
}

// Validate checks the repository's fields.
func (r *Repository) Validate() error {
	if err := ValidateName(r.Name); err != nil {
		return fmt.Errorf("repository: %w", err)
	}
	if r.URL == "" {
		return fmt.Errorf("%w repository %s: url is required", ErrInvalid, r.Name)
	}
	if strings.HasPrefix(r.URL, "-") || strings.ContainsAny(r.URL, "\x00\n\r") {
		return fmt.Errorf("%w repository %s: url %q", ErrInvalid, r.Name, r.URL)
	}
	if !strings.HasPrefix(r.URL, "/") {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh" && u.Scheme != "file" && u.Scheme != "git") {
			return fmt.Errorf("%w repository %s: url %q: want an absolute local path or an https, ssh, git or file URL", ErrInvalid, r.Name, r.URL)
		}
	}
	if strings.HasPrefix(r.Reference, "-") || strings.ContainsAny(r.Reference, " \x00\n\r~^:?*[\\") {
		return fmt.Errorf("%w repository %s: reference %q", ErrInvalid, r.Name, r.Reference)
	}
	if r.CredentialSecret != "" {
		if err := ValidateName(r.CredentialSecret); err != nil {
			return fmt.Errorf("repository %s: credentialSecret: %w", r.Name, err)
		}
	}
	return nil
}

// Secret is a named secret. Its value is only ever held encrypted in the
// store; API responses carry metadata only.
type Secret struct {
	Meta
	Description string `json:"description,omitempty"`
	// Value is write-only: accepted on create and update, never returned.
	Value []byte `json:"value,omitempty" writeOnly:"true"`
	// Warning is set in the answer to a create or update, never stored: a
	// value too short to be redacted from output (see RedactionWarning).
	Warning string `json:"warning,omitempty" readOnly:"true"`
}

// Validate checks the secret's name and size. An absent value is valid
// here (an update keeps the old one); ValidateNew refuses it.
func (s *Secret) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	if len(s.Value) > MaxSecretBytes {
		return fmt.Errorf("%w secret %s: %d bytes, more than %d", ErrInvalid, s.Name, len(s.Value), MaxSecretBytes)
	}
	if s.Value != nil && len(s.Value) == 0 {
		return fmt.Errorf("%w secret %s: the value is empty", ErrBadValue, s.Name)
	}
	return nil
}

// ValidateNew is Validate for a secret being created, which needs a value.
// (An empty value and no value look the same on the wire.)
func (s *Secret) ValidateNew() error {
	if err := s.Validate(); err != nil {
		return err
	}
	if len(s.Value) == 0 {
		return fmt.Errorf("%w secret %s: the value is empty", ErrBadValue, s.Name)
	}
	return nil
}

// RedactionWarning says, for a value shorter than MinRedactBytes, that it
// will not be redacted from service output; "" otherwise.
func (s *Secret) RedactionWarning() string {
	if n := len(s.Value); n > 0 && n < MinRedactBytes {
		return fmt.Sprintf("secret %s: the value is %d bytes, shorter than %d: it is not redacted from service output", s.Name, n, MinRedactBytes)
	}
	return ""
}

// MaxSecretBytes bounds one secret's value (64 KiB).
const MaxSecretBytes = 64 << 10

// MinRedactBytes is the shortest secret or sensitive value redacted from
// captured output. Replacing shorter ones would mangle ordinary output and,
// by the pattern of what got replaced, reveal the value.
const MinRedactBytes = 4

// GetMeta returns the embedded metadata; it lets code handle every resource
// type through one interface.
func (m *Meta) GetMeta() *Meta { return m }

// Object is any user-managed resource.
type Object interface {
	GetMeta() *Meta
	Validate() error
}

// KindOf returns the kind of a resource value.
func KindOf(o Object) Kind {
	switch o.(type) {
	case *Service:
		return KindService
	case *Decorator:
		return KindDecorator
	case *Repository:
		return KindRepository
	case *Secret:
		return KindSecret
	}
	return ""
}

// New returns an empty resource of kind k.
func New(k Kind) (Object, error) {
	switch k {
	case KindService:
		return &Service{}, nil
	case KindDecorator:
		return &Decorator{}, nil
	case KindRepository:
		return &Repository{}, nil
	case KindSecret:
		return &Secret{}, nil
	}
	return nil, fmt.Errorf("%w kind %q: not a user-managed resource", ErrInvalid, k)
}

// Ref names another resource that one depends on.
type Ref struct {
	Kind Kind
	Name string
}

// Refs lists the resources o refers to, which must exist before it: a
// service's repository, decorator and bound secrets, a repository's
// credential secret.
func Refs(o Object) []Ref {
	var refs []Ref
	switch v := o.(type) {
	case *Service:
		refs = append(refs, Ref{KindRepository, v.Repository})
		if v.Decorator != "" {
			refs = append(refs, Ref{KindDecorator, v.Decorator})
		}
		for _, b := range v.Secrets {
			refs = append(refs, Ref{KindSecret, b.Secret})
		}
	case *Repository:
		if v.CredentialSecret != "" {
			refs = append(refs, Ref{KindSecret, v.CredentialSecret})
		}
	}
	return refs
}
