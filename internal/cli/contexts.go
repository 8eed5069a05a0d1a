package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"sigs.k8s.io/yaml"
)

// Context is one gateway (or manager) endpoint with its credentials.
type Context struct {
	Server   string `json:"server"`
	CAFile   string `json:"caFile,omitempty"`
	Insecure bool   `json:"insecureSkipTLSVerify,omitempty"`
	User     string `json:"user,omitempty"`
	// Token is the bearer token from login. The file is 0600, like
	// kubeconfig; `autogate logout` revokes and removes it.
	Token string `json:"token,omitempty"`
}

// Contexts is the CLI's config file.
type Contexts struct {
	Current  string              `json:"current,omitempty"`
	Contexts map[string]*Context `json:"contexts"`
}

// DefaultConfigPath is $AUTOGATE_CONFIG, else <user config dir>/autogate/config.yaml.
func DefaultConfigPath(getenv func(string) string) string {
	if p := getenv("AUTOGATE_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "autogate", "config.yaml")
}

func loadContexts(path string) (*Contexts, error) {
	c := &Contexts{Contexts: map[string]*Context{}}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err := yaml.UnmarshalStrict(raw, c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if c.Contexts == nil {
		c.Contexts = map[string]*Context{}
	}
	return c, nil
}

func (c *Contexts) save(path string) error {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

func (c *Contexts) names() []string {
	var out []string
	for n := range c.Contexts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func absPath(p string) (string, error) { return filepath.Abs(p) }
