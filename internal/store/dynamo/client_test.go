package dynamo_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/autogate/autogate/internal/store/dynamo"
)

// TestOwnConnections: a client asked for its own connections does not share
// the HTTP client (and so the connection pool) of the config it came from;
// one that is not, does.
func TestOwnConnections(t *testing.T) {
	shared := awshttp.NewBuildableClient()
	cfg := aws.Config{Region: "us-east-1", HTTPClient: shared}
	if got := dynamo.NewClient(cfg, dynamo.ClientOptions{}).Options().HTTPClient; got != shared {
		t.Errorf("default client: HTTP client %p, want the config's %p", got, shared)
	}
	own := dynamo.NewClient(cfg, dynamo.ClientOptions{OwnConnections: true}).Options().HTTPClient
	if own == shared || own == nil {
		t.Errorf("OwnConnections: HTTP client %p, want a copy of the config's %p", own, shared)
	}
	if _, ok := own.(*awshttp.BuildableClient); !ok {
		t.Errorf("OwnConnections: HTTP client is %T, want a copy of the SDK's buildable client", own)
	}
	if dynamo.NewClient(aws.Config{Region: "us-east-1"}, dynamo.ClientOptions{OwnConnections: true}).Options().HTTPClient == nil {
		t.Error("OwnConnections on a config without HTTP client: nil")
	}
}
