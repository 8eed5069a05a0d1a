// Command infra is the Autogate CDK app: `cdk synth` and `cdk deploy` run it
// through the repository's cdk.json. It reads the clusters file (context
// "clustersFile", default clusters.yaml next to this file) and synthesizes
// one stack per cluster plus the manager stack.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/autogate/autogate/infra/stacks"
)

func main() {
	defer jsii.Close()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "autogate infra:", err)
		os.Exit(1)
	}
}

func run() error {
	// cdk.json runs the app as "cd infra && go run .", but the CLI gives the
	// output directory relative to the repository root, where it reads the
	// cloud assembly back. (The environment cannot be rewritten here: the
	// jsii runtime has already started Node with it.)
	props := &awscdk.AppProps{}
	if out := os.Getenv("CDK_OUTDIR"); out != "" && !filepath.IsAbs(out) {
		props.Outdir = jsii.String(filepath.Join("..", out))
	}
	app := awscdk.NewApp(props)
	path := "clusters.yaml"
	if v, ok := app.Node().TryGetContext(jsii.String("clustersFile")).(string); ok && v != "" {
		path = v
	}
	cfg, err := stacks.LoadConfig(path)
	if err != nil {
		return err
	}
	// cdk.json runs the app from infra/; the image's build context is the
	// repository root above it.
	root, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	stacks.Build(app, cfg, root)
	app.Synth(nil)
	return nil
}
