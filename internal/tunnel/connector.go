package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
)

// Config configures a Connector.
type Config struct {
	// URLs are the manager's base URLs (https://host:port), tried in turn
	// from the last one that worked: a standby manager answers 503 and the
	// next is tried. Required.
	URLs []string
	// Credential is the cluster's credential. Required.
	Credential Secret
	// Cluster, Node and Version go into the hello. Cluster and Node are
	// required.
	Cluster, Node, Version string
	// Handler serves the requests the manager forwards: the gateway's own
	// API handler. Required.
	Handler http.Handler
	// Trust attaches the manager's caller to a request's context. Required.
	Trust TrustFunc
	// TLS verifies the manager; nil means the system roots.
	TLS *tls.Config
	// MaxFrame, MaxResponse and MaxConcurrent: see DialOptions.
	MaxFrame, MaxResponse, MaxConcurrent int
	// MinBackoff and MaxBackoff bound the jittered exponential pause
	// between failed attempts; defaults 200 ms and 15 s. After a session
	// that was admitted ends, the next attempt starts at MinBackoff.
	MinBackoff, MaxBackoff time.Duration
	Clock                  clock.Clock
	Logger                 *slog.Logger
}

// Connector keeps a cluster's tunnel to the manager up while its gateway
// is active: Run it with the lease term's context and epoch.
type Connector struct {
	cfg Config

	mu      sync.Mutex
	current string // the manager URL of the live session, "" if none
	last    int    // index of the URL that last admitted us
}

// NewConnector validates cfg and returns a connector.
func NewConnector(cfg Config) (*Connector, error) {
	var errs []error
	if len(cfg.URLs) == 0 {
		errs = append(errs, errors.New("at least one manager URL is required"))
	}
	for _, u := range cfg.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			errs = append(errs, fmt.Errorf("manager URL %q: want https://host:port", u))
		}
	}
	if cfg.Credential == "" {
		errs = append(errs, errors.New("a cluster credential is required"))
	}
	if err := resource.ValidateCluster(cfg.Cluster); err != nil {
		errs = append(errs, err)
	}
	if cfg.Node == "" {
		errs = append(errs, errors.New("a node ID is required"))
	}
	if cfg.Handler == nil || cfg.Trust == nil {
		errs = append(errs, errors.New("a handler and a trust function are required"))
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 15 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		errs = append(errs, fmt.Errorf("max backoff %v is shorter than min backoff %v", cfg.MaxBackoff, cfg.MinBackoff))
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tunnel connector: %w", errors.Join(errs...))
	}
	return &Connector{cfg: cfg}, nil
}

// Connected returns the manager URL the tunnel is up to, "" if it is down.
func (c *Connector) Connected() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current
}

// Run keeps one session to the manager up, at lease epoch epoch, until ctx
// ends, then closes it at once and returns nil. Call it with the context
// of the lease term: a deposed gateway must not hold the connection. A
// failed attempt, a refusal or a lost session is retried after a jittered
// exponential backoff, trying every URL; while a standby manager answers,
// the pause stays under a second, so a manager fail-over costs little more
// than the managers' own.
func (c *Connector) Run(ctx context.Context, epoch int64) error {
	log := c.cfg.Logger.With("epoch", epoch)
	opts := DialOptions{
		Credential: c.cfg.Credential, TLS: c.cfg.TLS, MaxFrame: c.cfg.MaxFrame, MaxResponse: c.cfg.MaxResponse,
		MaxConcurrent: c.cfg.MaxConcurrent, Clock: c.cfg.Clock, Logger: c.cfg.Logger,
		Hello: Hello{Cluster: c.cfg.Cluster, Node: c.cfg.Node, Epoch: epoch, Version: c.cfg.Version},
	}
	failures := 0
	for ctx.Err() == nil {
		admitted, standby := false, false
		c.mu.Lock()
		start := c.last
		c.mu.Unlock()
		for i := range c.cfg.URLs {
			idx := (start + i) % len(c.cfg.URLs)
			u := c.cfg.URLs[idx]
			s, err := Dial(ctx, u, opts)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				level := slog.LevelWarn
				if errors.Is(err, ErrNotActive) {
					level, standby = slog.LevelDebug, true
				}
				log.Log(ctx, level, "manager connection refused", "manager", u, "error", err)
				continue
			}
			admitted = true
			c.mu.Lock()
			c.current, c.last = u, idx
			c.mu.Unlock()
			log.Info("connected to the manager", "manager", u, "manager_node", s.Welcome().Manager)
			err = s.Serve(ctx, c.cfg.Handler, c.cfg.Trust)
			c.mu.Lock()
			c.current = ""
			c.mu.Unlock()
			if ctx.Err() != nil {
				log.Info("manager connection closed: no longer active", "manager", u)
				return nil
			}
			log.Warn("manager connection lost", "manager", u, "error", err)
			break
		}
		if admitted {
			failures = 0
		} else {
			failures++
		}
		pause := c.backoff(failures)
		if standby {
			// A standby manager answered: an active one is due within a
			// lease duration, so keep polling at about once a second.
			pause = min(pause, time.Second/2+rand.N(time.Second/2))
		}
		select {
		case <-ctx.Done():
		case <-c.cfg.Clock.After(pause):
		}
	}
	return nil
}

// backoff is the pause after n consecutive failed rounds: min·2^n capped
// at max, jittered uniformly over its upper half so a fleet of gateways
// that lost the manager together do not come back in lockstep.
func (c *Connector) backoff(n int) time.Duration {
	d := c.cfg.MinBackoff
	for i := 0; i < n && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}
