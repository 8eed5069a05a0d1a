package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/manager/registry"
	"github.com/autogate/autogate/internal/tunnel"
	"github.com/autogate/autogate/internal/wire"
)

// Hub holds the tunnels of the clusters, at most one per cluster, and only
// while its manager is active: Run it with the lease term's context.
type Hub struct {
	Registry *registry.Registry
	// Node is this manager's node ID, sent in the welcome.
	Node string
	// LinkConfig configures every tunnel (heartbeat, frame limit, …).
	LinkConfig tunnel.LinkConfig
	Clock      clock.Clock
	Logger     *slog.Logger

	admit chan *admission

	mu    sync.Mutex
	term  chan struct{} // closed when the running term ends; nil when not active
	slots map[string]*slot
}

// slot is one cluster's place in the hub.
type slot struct {
	admitting sync.Mutex // serializes admissions of the cluster
	link      atomic.Pointer[tunnel.Link]
}

// admission hands a /v1/connect request to the term's goroutine.
type admission struct {
	w       http.ResponseWriter
	r       *http.Request
	cluster string // the credential's cluster
	done    chan struct{}
}

// NewHub returns a hub; it takes tunnels once Run is called.
func NewHub(reg *registry.Registry, node string, link tunnel.LinkConfig, clk clock.Clock, log *slog.Logger) *Hub {
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	link.Clock = clk
	link.Logger = log
	return &Hub{Registry: reg, Node: node, LinkConfig: link, Clock: clk, Logger: log,
		admit: make(chan *admission), slots: map[string]*slot{}}
}

// Run takes tunnels until ctx ends (the manager's lease term), then closes
// every tunnel at once (code 4503, so gateways try another manager) and
// returns when they are all gone.
func (h *Hub) Run(ctx context.Context) {
	term := make(chan struct{})
	h.mu.Lock()
	h.term = term
	h.mu.Unlock()
	var wg sync.WaitGroup
	defer func() {
		h.mu.Lock()
		h.term = nil
		h.mu.Unlock()
		close(term)
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-h.admit:
			wg.Go(func() {
				defer close(a.done)
				h.serve(ctx, a)
			})
		}
	}
}

// ServeConnect is the handler of /v1/connect. The caller has checked the
// cluster credential: cluster is the cluster it belongs to.
func (h *Hub) ServeConnect(w http.ResponseWriter, r *http.Request, cluster string) error {
	h.mu.Lock()
	term := h.term
	h.mu.Unlock()
	if term == nil {
		return errStandby
	}
	a := &admission{w: w, r: r, cluster: cluster, done: make(chan struct{})}
	select {
	case h.admit <- a:
	case <-term:
		return errStandby
	case <-r.Context().Done():
		return nil
	}
	<-a.done
	return nil
}

var errStandby = errors.New("this manager is a standby")

func (h *Hub) slot(id string) *slot {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.slots[id]
	if s == nil {
		s = &slot{}
		h.slots[id] = s
	}
	return s
}

// serve accepts one tunnel, admits or refuses it, and serves it until it
// ends.
func (h *Hub) serve(ctx context.Context, a *admission) {
	link, err := tunnel.Accept(ctx, a.w, a.r, h.LinkConfig)
	if err != nil {
		h.Logger.Debug("tunnel not accepted", "cluster", a.cluster, "error", err)
		return
	}
	hello := link.Hello()
	log := h.Logger.With("cluster", hello.Cluster, "gateway", hello.Node, "epoch", hello.Epoch)
	if hello.Cluster != a.cluster {
		link.Refuse(fmt.Errorf("%w: the credential is cluster %s's, the hello names %s", tunnel.ErrWrongCluster, a.cluster, hello.Cluster))
		log.Warn("tunnel refused: credential of another cluster", "credential_cluster", a.cluster)
		return
	}
	s := h.slot(hello.Cluster)
	if err := h.admitLink(ctx, s, link); err != nil {
		link.Refuse(err)
		log.Warn("tunnel refused", "error", err)
		return
	}
	log.Info("cluster connected", "version", hello.Version)
	err = link.Serve(ctx, tunnel.Welcome{Manager: h.Node})
	last := link.LastHeartbeat()
	if s.link.CompareAndSwap(link, nil) {
		// Best effort, and on the term's store view: a deposed manager's
		// write is fenced out, and the next active's view wins anyway.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := h.Registry.Disconnected(wctx, hello.Cluster, hello.Node, hello.Epoch, last); err != nil {
			log.Debug("record disconnection", "error", err)
		}
		cancel()
	}
	log.Info("cluster disconnected", "reason", err)
}

// admitLink applies the epoch fence and makes link the cluster's tunnel,
// closing the one it replaces.
func (h *Hub) admitLink(ctx context.Context, s *slot, link *tunnel.Link) error {
	hello := link.Hello()
	s.admitting.Lock()
	defer s.admitting.Unlock()
	if cur := s.link.Load(); cur != nil && hello.Epoch < cur.Hello().Epoch {
		return fmt.Errorf("%w: epoch %d, the connected gateway %s has %d", tunnel.ErrStaleEpoch, hello.Epoch, cur.Hello().Node, cur.Hello().Epoch)
	}
	if _, err := h.Registry.Admit(ctx, hello.Cluster, hello.Node, hello.Epoch, hello.Version); err != nil {
		if errors.Is(err, registry.ErrStaleEpoch) {
			return fmt.Errorf("%w: %w", tunnel.ErrStaleEpoch, err)
		}
		return fmt.Errorf("%w: cannot record the connection: %w", tunnel.ErrNotActive, err)
	}
	if old := s.link.Swap(link); old != nil {
		old.Close(fmt.Errorf("%w: gateway %s connected at epoch %d", tunnel.ErrReplaced, hello.Node, hello.Epoch))
	}
	return nil
}

// Link returns cluster id's tunnel, nil if it has none.
func (h *Hub) Link(id string) *tunnel.Link {
	h.mu.Lock()
	s := h.slots[id]
	h.mu.Unlock()
	if s == nil {
		return nil
	}
	l := s.link.Load()
	if l == nil {
		return nil
	}
	select {
	case <-l.Done():
		return nil
	default:
		return l
	}
}

// Drop closes cluster id's tunnel, if any, with err (a deleted cluster).
func (h *Hub) Drop(id string, err error) {
	if l := h.Link(id); l != nil {
		l.Close(err)
	}
}

// Overlay fills in c's live state from the hub: status, node, epoch,
// version, connected since, last heartbeat.
func (h *Hub) Overlay(c *wire.Cluster) {
	l := h.Link(c.ID)
	if l == nil {
		c.Status = wire.ClusterDisconnected
		return
	}
	hello := l.Hello()
	c.Node, c.Epoch, c.Version = hello.Node, hello.Epoch, hello.Version
	if t := l.ConnectedAt(); t.UnixNano() > 0 {
		c.ConnectedSince = t.UTC()
	}
	c.LastHeartbeat = l.LastHeartbeat().UTC()
	c.Status = wire.ClusterConnected
	if h.Clock.Now().Sub(c.LastHeartbeat) > 2*h.heartbeat() {
		c.Status = wire.ClusterStale
	}
}

func (h *Hub) heartbeat() time.Duration {
	if h.LinkConfig.Heartbeat > 0 {
		return h.LinkConfig.Heartbeat
	}
	return 5 * time.Second
}
