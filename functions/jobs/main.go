// Command jobs is the job function Lambda: the step of a fleet-wide job's
// state machine that runs a batch of slices (parallel-scan segments of the
// members' logs) of a what-if or a recount, writing each slice's summary
// once, and the step that merges them into the job's (infra/jobs), wired
// by setup.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := setup.FromEnv()
	if err != nil {
		slog.Error("configuration", "error", err)
		os.Exit(1)
	}
	st, res, err := setup.JobStores(context.Background(), cfg)
	if err != nil {
		slog.Error("start", "error", err)
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, b jobs.Batch) (jobs.BatchResult, error) {
		return jobs.Handle(ctx, st, res, b)
	})
}
