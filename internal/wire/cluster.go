package wire

import "time"

// ClusterStatus is a cluster's connection state, as the Gateway Manager
// sees it.
type ClusterStatus string

// The cluster statuses.
const (
	// ClusterConnected: its active gateway holds the tunnel and heartbeats arrive.
	ClusterConnected ClusterStatus = "connected"
	// ClusterStale: the tunnel is open but heartbeats are overdue; requests
	// are still routed and may time out.
	ClusterStale ClusterStatus = "stale"
	// ClusterDisconnected: no tunnel; requests fail at once.
	ClusterDisconnected ClusterStatus = "disconnected"
)

// Cluster is one Gateway Manager registry entry.
type Cluster struct {
	ID          string        `json:"id"`
	Region      string        `json:"region,omitempty"`
	Account     string        `json:"account,omitempty"`
	Description string        `json:"description,omitempty"`
	Status      ClusterStatus `json:"status" enum:"connected,stale,disconnected"`
	// Node and Epoch are the active gateway that holds (or last held) the
	// tunnel and its lease epoch; Version its binary's version.
	Node    string `json:"node,omitempty"`
	Epoch   int64  `json:"epoch,omitempty"`
	Version string `json:"version,omitempty"`
	// ConnectedSince is when the current tunnel was admitted (zero when
	// disconnected); LastHeartbeat when the manager last heard from it.
	ConnectedSince time.Time `json:"connectedSince,omitzero"`
	LastHeartbeat  time.Time `json:"lastHeartbeat,omitzero"`
	CreatedAt      time.Time `json:"createdAt"`
}

// CreateClusterRequest registers a cluster with the Gateway Manager.
type CreateClusterRequest struct {
	ID          string `json:"id" maxLength:"32" doc:"the cluster's ID, as its gateways' --cluster"`
	Region      string `json:"region,omitempty" maxLength:"32" pattern:"^[a-z0-9-]*$" doc:"AWS region, e.g. eu-west-1"`
	Account     string `json:"account,omitempty" maxLength:"12" pattern:"^([0-9]{12})?$" doc:"AWS account ID (12 digits)"`
	Description string `json:"description,omitempty" maxLength:"256"`
}

// CreatedCluster is a new registry entry with its credential, shown this once.
type CreatedCluster struct {
	Cluster
	// Credential lets the cluster's active gateway connect as this cluster
	// and no other. The manager keeps only its SHA-256.
	Credential string `json:"credential"`
}
