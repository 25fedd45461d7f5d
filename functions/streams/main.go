// Command streams is the stream function Lambda: it reads the licensing
// table's change stream, keeps member snapshots up, counts licences and
// keeps resume points up.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/streams"
)

func main() {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := dynamo.ConfigFromEnv()
	if err != nil {
		slog.Error("configuration", "error", err)
		os.Exit(1)
	}
	db, err := dynamo.NewClient(context.Background(), cfg)
	if err != nil {
		slog.Error("start", "error", err)
		os.Exit(1)
	}
	every := cfg.SnapshotEvery
	if every == 0 {
		every = dynamo.DefaultSnapshotEvery
	}
	policy, err := policyOf(os.Getenv("POLICY_FILE"))
	if err != nil {
		slog.Error("policy", "error", err)
		os.Exit(1)
	}
	store := dynamo.New(db, cfg.Table)
	p := &streams.Processor{Store: store, Counters: store, Holders: store, Progress: store, History: store, SnapshotEvery: every, Policy: policy}
	lambda.Start(p.Handle)
}

// policyOf reads the policy POLICY_FILE names (the shipped one if none), as
// the API function does: snapshots keep what its quotas can look at.
func policyOf(path string) (*licensing.Policy, error) {
	if path == "" {
		return licensing.DefaultPolicy(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return licensing.ParsePolicy(f)
}
