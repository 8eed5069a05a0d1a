package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/wire"
)

// Kind is the store kind of cluster records, under the manager's own
// cluster ID.
const Kind resource.Kind = "cluster"

// Errors callers branch on.
var (
	// ErrBadCredential: not a credential, or not the current one of an
	// existing cluster.
	ErrBadCredential = errors.New("invalid cluster credential")
	// ErrStaleEpoch: an epoch older than the newest admitted.
	ErrStaleEpoch = errors.New("epoch older than the newest admitted for the cluster")
)

// record is what the store holds per cluster.
type record struct {
	ID             string    `json:"id"`
	Region         string    `json:"region,omitempty"`
	Account        string    `json:"account,omitempty"`
	Description    string    `json:"description,omitempty"`
	CredentialHash string    `json:"credentialHash"`
	CreatedAt      time.Time `json:"createdAt"`
	// Epoch is the newest lease epoch ever admitted: the fence.
	Epoch          int64     `json:"epoch,omitempty"`
	Node           string    `json:"node,omitempty"`
	Version        string    `json:"version,omitempty"`
	ConnectedAt    time.Time `json:"connectedAt,omitzero"`
	DisconnectedAt time.Time `json:"disconnectedAt,omitzero"`
	LastHeartbeat  time.Time `json:"lastHeartbeat,omitzero"`
}

func (r record) cluster() wire.Cluster {
	return wire.Cluster{ID: r.ID, Region: r.Region, Account: r.Account, Description: r.Description, Status: wire.ClusterDisconnected,
		Node: r.Node, Epoch: r.Epoch, Version: r.Version, LastHeartbeat: r.LastHeartbeat, CreatedAt: r.CreatedAt}
}

// Registry stores the clusters a manager knows, under the manager's own
// cluster ID (Namespace) in a store it may share with clusters.
type Registry struct {
	Store store.Store
	// Namespace is the manager's cluster ID; no cluster may take it.
	Namespace string
	Clock     clock.Clock
}

func (g *Registry) key(id string) store.Key {
	return store.Key{Cluster: g.Namespace, Kind: Kind, Name: id}
}

var (
	regionRE  = regexp.MustCompile(`^[a-z0-9-]{0,32}$`)
	accountRE = regexp.MustCompile(`^([0-9]{12})?$`)
)

// Validate checks a create request (huma checks the same at the edge; the
// CLI and tests get the same answer from here).
func (g *Registry) Validate(req wire.CreateClusterRequest) error {
	if err := resource.ValidateCluster(req.ID); err != nil {
		return err
	}
	if req.ID == g.Namespace {
		return fmt.Errorf("%w cluster ID %q: it is the manager's own namespace (--cluster of autogate manager)", resource.ErrInvalid, req.ID)
	}
	if !regionRE.MatchString(req.Region) {
		return fmt.Errorf("%w region %q: want an AWS region name such as eu-west-1", resource.ErrInvalid, req.Region)
	}
	if !accountRE.MatchString(req.Account) {
		return fmt.Errorf("%w account %q: want a 12-digit AWS account ID", resource.ErrInvalid, req.Account)
	}
	if len(req.Description) > 256 {
		return fmt.Errorf("%w description: longer than 256 bytes", resource.ErrInvalid)
	}
	return nil
}

// credentialPrefix marks cluster credentials so secret scanners find them.
const credentialPrefix = "agc_"

// newCredential returns a fresh credential for cluster id and its hash.
// Cluster IDs never contain '_', so the ID can be read back from it.
func newCredential(id string) (cred, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	cred = credentialPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b)
	return cred, hashCredential(cred)
}

// hashCredential is a plain SHA-256: the credential holds 256 random bits,
// so no slow hash is needed to resist guessing.
func hashCredential(cred string) string {
	sum := sha256.Sum256([]byte(cred))
	return hex.EncodeToString(sum[:])
}

// ClusterOf returns the cluster ID a credential names, without checking it.
func ClusterOf(cred string) (string, error) {
	rest, ok := strings.CutPrefix(cred, credentialPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || secret == "" || len(cred) > 200 || resource.ValidateCluster(id) != nil {
		return "", ErrBadCredential
	}
	return id, nil
}

// Create registers a cluster and returns it with its credential, which is
// shown only here. store.ErrExists if the ID is taken.
func (g *Registry) Create(ctx context.Context, req wire.CreateClusterRequest) (wire.CreatedCluster, error) {
	if err := g.Validate(req); err != nil {
		return wire.CreatedCluster{}, err
	}
	cred, hash := newCredential(req.ID)
	r := record{ID: req.ID, Region: req.Region, Account: req.Account, Description: req.Description,
		CredentialHash: hash, CreatedAt: g.Clock.Now().UTC()}
	data, err := json.Marshal(r)
	if err != nil {
		return wire.CreatedCluster{}, err
	}
	if _, err := g.Store.Create(ctx, store.Record{Key: g.key(req.ID), Data: data}); err != nil {
		return wire.CreatedCluster{}, fmt.Errorf("register cluster %s: %w", req.ID, err)
	}
	return wire.CreatedCluster{Cluster: r.cluster(), Credential: cred}, nil
}

func (g *Registry) load(ctx context.Context, id string) (record, int64, error) {
	if err := resource.ValidateCluster(id); err != nil {
		return record{}, 0, err
	}
	rec, err := g.Store.Get(ctx, g.key(id))
	if err != nil {
		return record{}, 0, fmt.Errorf("cluster %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return record{}, 0, fmt.Errorf("decode cluster %s: %w", id, err)
	}
	return r, rec.Version, nil
}

// Get returns one cluster as stored (Status Disconnected: the caller
// overlays the live state). store.ErrNotFound if unknown.
func (g *Registry) Get(ctx context.Context, id string) (wire.Cluster, error) {
	r, _, err := g.load(ctx, id)
	if err != nil {
		return wire.Cluster{}, err
	}
	return r.cluster(), nil
}

// List returns every cluster, ascending by ID.
func (g *Registry) List(ctx context.Context) ([]wire.Cluster, error) {
	out := []wire.Cluster{}
	tok := ""
	for {
		recs, next, err := g.Store.List(ctx, g.Namespace, Kind, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		for _, rec := range recs {
			var r record
			if err := json.Unmarshal(rec.Data, &r); err != nil {
				return nil, fmt.Errorf("decode cluster %s: %w", rec.Name, err)
			}
			out = append(out, r.cluster())
		}
		if next == "" {
			return out, nil
		}
		tok = next
	}
}

// Delete forgets a cluster, its credential and its epoch fence.
func (g *Registry) Delete(ctx context.Context, id string) error {
	if err := resource.ValidateCluster(id); err != nil {
		return err
	}
	if err := g.Store.Delete(ctx, g.key(id), 0); err != nil {
		return fmt.Errorf("delete cluster %s: %w", id, err)
	}
	return nil
}

// Verify returns the cluster a credential belongs to, or ErrBadCredential
// (also for a deleted cluster). The comparison is constant-time.
func (g *Registry) Verify(ctx context.Context, cred string) (string, error) {
	id, err := ClusterOf(cred)
	if err != nil {
		return "", err
	}
	r, _, err := g.load(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrBadCredential
	}
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare([]byte(hashCredential(cred)), []byte(r.CredentialHash)) != 1 {
		return "", ErrBadCredential
	}
	return id, nil
}

// Admit records that node of cluster id connected at epoch, unless the
// registry has already admitted a newer epoch (ErrStaleEpoch). The epoch
// is stored, so the fence holds across manager restarts and fail-overs.
func (g *Registry) Admit(ctx context.Context, id, node string, epoch int64, version string) (wire.Cluster, error) {
	var out wire.Cluster
	err := g.update(ctx, id, func(r *record) error {
		if epoch < r.Epoch {
			return fmt.Errorf("%w: %d < %d", ErrStaleEpoch, epoch, r.Epoch)
		}
		r.Epoch, r.Node, r.Version = epoch, node, version
		r.ConnectedAt = g.Clock.Now().UTC()
		r.LastHeartbeat = r.ConnectedAt
		r.DisconnectedAt = time.Time{}
		out = r.cluster()
		return nil
	})
	return out, err
}

// Disconnected records the end of node's tunnel at epoch, unless a newer
// connection has been admitted since.
func (g *Registry) Disconnected(ctx context.Context, id, node string, epoch int64, lastHeartbeat time.Time) error {
	return g.update(ctx, id, func(r *record) error {
		if r.Node != node || r.Epoch != epoch {
			return errUnchanged
		}
		r.DisconnectedAt = g.Clock.Now().UTC()
		r.LastHeartbeat = lastHeartbeat.UTC()
		return nil
	})
}

var errUnchanged = errors.New("unchanged")

// update applies change with optimistic concurrency, retrying conflicts.
func (g *Registry) update(ctx context.Context, id string, change func(*record) error) error {
	for attempt := 0; ; attempt++ {
		r, version, err := g.load(ctx, id)
		if err != nil {
			return err
		}
		if err := change(&r); errors.Is(err, errUnchanged) {
			return nil
		} else if err != nil {
			return err
		}
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = g.Store.Update(ctx, store.Record{Key: g.key(id), Version: version, Data: data})
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return fmt.Errorf("update cluster %s: %w", id, err)
		}
		return nil
	}
}
