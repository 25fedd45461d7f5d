// Command dlicense-job runs a fleet-wide job (infra/jobs) over every member
// of the table, a parallel-scan segment at a time, with a pool of workers
// standing in for the distributed engine: the same slice handler.
//
//	dlicense-job -kind whatif -policy new-policy.json [-segments 32] [-workers 4]
//	dlicense-job -kind recount                 the counters recounted, to compare
//	dlicense-job -kind snapshots | holders     rebuild every snapshot, record every holder
//	dlicense-job -kind viewing-rows            rebuild every recently watched row
//	dlicense-job -kind counters | engagement   recount and replace the live counts
//	                                           (stream function paused, as for make rebuild)
//
// It prints the job's summary as JSON. It reads TABLE_NAME, AWS_REGION and
// DYNAMODB_ENDPOINT like the functions (VIEWING_TABLE_NAME for what-if's
// refusals, in the regions layout).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/ops/awsenv"
	"github.com/dlicense/dlicense/infra/ops/progress"
	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	kind := flag.String("kind", "", "the job: "+strings.Join(jobs.Kinds, ", "))
	policyFile := flag.String("policy", "", "what-if: the policy document to decide the past by")
	segments := flag.Int("segments", 32, "slices of the table (parallel-scan segments)")
	workers := flag.Int("workers", 4, "slices run at once")
	flag.Parse()
	if err := run(*kind, *policyFile, *segments, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-job:", err)
		os.Exit(1)
	}
}

func run(kind, policyFile string, segments, workers int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	job := jobs.Slice{Kind: kind, Total: segments}
	if kind == jobs.KindWhatIf {
		if policyFile == "" {
			return errors.New("-kind whatif needs -policy FILE")
		}
		doc, err := os.ReadFile(policyFile)
		if err != nil {
			return err
		}
		if job.Policy, err = licensing.ParsePolicy(bytes.NewReader(doc)); err != nil {
			return fmt.Errorf("%s: %w", policyFile, err)
		}
	}
	if err := job.Check(); err != nil {
		return err
	}
	cfg, err := dynamo.ConfigFromEnv()
	if err != nil {
		return err
	}
	if cfg, err = awsenv.Resolve(ctx, cfg); err != nil {
		return err
	}
	db, err := dynamo.NewClient(ctx, cfg)
	if err != nil {
		return err
	}
	stores := dynamo.Layout(db, cfg.Tables())
	service, err := setup.Policy(os.Getenv("POLICY_FILE"))
	if err != nil {
		return err
	}
	meter := &dynamo.Meter{}
	ctx = dynamo.WithMeter(ctx, meter)
	bar := progress.New(int64(segments), kind+" over "+fmt.Sprint(segments)+" segments")
	start := time.Now()
	js := setup.DynamoJobStores(stores, service)
	sum, failed := jobs.RunLocal(ctx, js, job, workers, 3, func(done int) { bar.Set(done) })
	bar.Finish()
	if len(failed) > 0 {
		return fmt.Errorf("%d segments failed every attempt: %v", len(failed), failed)
	}
	// The counters and engagement jobs write their recounts now.
	if sum, err = jobs.Finish(ctx, js, sum, segments); err != nil {
		return err
	}
	took := time.Since(start)
	out, _ := json.MarshalIndent(sum, "", "  ")
	fmt.Println(string(out))
	u := meter.Usage()
	fmt.Fprintf(os.Stderr, "%d members in %.1f s (%.0f members/s, %d workers); %d round trips, %.1f read units (%.2f a member)\n",
		sum.Members, took.Seconds(), float64(sum.Members)/took.Seconds(), workers, u.RoundTrips, u.ReadUnits, u.ReadUnits/float64(max(sum.Members, 1)))
	return nil
}
