package benchreport

import (
	"context"
	"slices"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

// Startup is how long building one function's handler takes: what a Lambda
// cold start spends in main before serving (process start and runtime
// initialisation aside).
type Startup struct {
	What string
	Runs int
	// First is the first run in this process (lazy initialisation
	// included); Median and Max are over all runs.
	First, Median, Max time.Duration
}

// MeasureStartup builds each function's handler runs times, as its main
// does, and times it. No request is made: the DynamoDB endpoint is never
// contacted while building.
func MeasureStartup(ctx context.Context, runs int) ([]Startup, error) {
	key, err := tokens.GenerateKey("bench")
	if err != nil {
		return nil, err
	}
	api := func(store string) func() error {
		return func() error {
			cfg := setup.Config{SigningKeys: key.Encode(), Issuer: "dlicense-bench", PlanClaim: "plan", QuietMetrics: true,
				Dynamo: dynamo.Config{Table: "bench", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9"}}
			parts, err := local.Build(ctx, store, cfg)
			if err != nil {
				return err
			}
			parts.Handler()
			return nil
		}
	}
	policy := licensing.DefaultPolicy() // parsed at start as the API does, not measured here
	streamFunction := func() error {
		cfg := dynamo.Config{Table: "bench", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9"}
		db, err := dynamo.NewClient(ctx, cfg)
		if err != nil {
			return err
		}
		_ = setup.NewProcessor(setup.DynamoStores(dynamo.Layout(db, cfg.Tables())), setup.DefaultSnapshotEvery, policy)
		return nil
	}
	var out []Startup
	for _, c := range []struct {
		what  string
		build func() error
	}{
		{"API: `setup.Assemble` + `App.Handler`, embedded store", api("memory")},
		{"API: `setup.Assemble` + `App.Handler`, DynamoDB store (client only)", api("dynamo")},
		{"stream function: DynamoDB client + stores + `projector.Processor` (five projections)", streamFunction},
	} {
		times := make([]time.Duration, 0, runs)
		for range runs {
			start := time.Now()
			if err := c.build(); err != nil {
				return nil, err
			}
			times = append(times, time.Since(start))
		}
		s := Startup{What: c.what, Runs: runs, First: times[0]}
		slices.Sort(times)
		s.Median, s.Max = times[len(times)/2], times[len(times)-1]
		out = append(out, s)
	}
	return out, nil
}
