package local

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/setup"
)

// App is the API and stream function wired as the Lambdas wire them
// (setup.Assemble), on DynamoDB (Local) or on the embedded store.
type App struct {
	*setup.App
	// Memory is the embedded store, when the store is "memory".
	Memory *memstore.Store
	// jobStores are what the job function's handler reads and writes here.
	jobStores jobs.Stores
}

// Build wires the app on store: "dynamo" (the table c names, as the API
// function does) or "memory" (the embedded store for every store).
func Build(ctx context.Context, store string, c setup.Config) (*App, error) {
	switch store {
	case "dynamo":
		a, err := setup.Build(ctx, c)
		if err != nil {
			return nil, err
		}
		st := setup.DynamoJobStores(*a.Dynamo, a.Policy())
		if a.Jobs == nil {
			a.Jobs = &jobs.Local{Stores: st, Results: a.Dynamo.JobResults, Workers: LocalJobWorkers}
		}
		return &App{App: a, jobStores: st}, nil
	case "memory":
		m := memstore.New()
		a, err := setup.Assemble(ctx, c, MemoryStores(m))
		if err != nil {
			return nil, err
		}
		st := jobs.Stores{Members: m, Events: m, Refusals: m, Snapshots: m, Holders: m, Counters: m, Viewing: m, Silent: m, Policy: a.Policy(),
			Licensing: setup.WithdrawingService(m, m, a.Policy()), Withdrawals: m}
		a.Jobs = &jobs.Local{Stores: st, Results: m, Workers: LocalJobWorkers}
		return &App{App: a, Memory: m, jobStores: st}, nil
	}
	return nil, fmt.Errorf("store %q: want dynamo or memory", store)
}

// SweepSilentViews runs the sweep of silent views once: each shard
// through the job function's handler, as the template's silent views state
// machine hands it every minute. It returns how many views it closed.
func (a *App) SweepSilentViews(ctx context.Context) (int, error) {
	closed := 0
	for shard := range viewing.LiveShards {
		out, err := jobs.Handle(ctx, a.jobStores, nil, jobs.Batch{Sweep: &jobs.SweepShard{Shard: shard}})
		if err != nil {
			return closed, err
		}
		closed += out.Sweep.Closed
	}
	return closed, nil
}

// RunDueWithdrawals runs the withdrawals whose time has come, through the
// job function's handler, as the template's schedule does every minute.
func (a *App) RunDueWithdrawals(ctx context.Context) ([]licensing.Withdrawal, error) {
	out, err := jobs.Handle(ctx, a.jobStores, nil, jobs.Batch{Withdrawals: true})
	return out.Withdrawals, err
}

// RunSweeps runs SweepSilentViews and RunDueWithdrawals every
// viewing.SweepEvery until ctx ends, logging what they did.
func (a *App) RunSweeps(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(viewing.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := a.SweepSilentViews(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Error("sweep of silent views", "error", err, "closed", n)
			case n > 0:
				log.Info("sweep of silent views", "closed", n)
			}
			ws, err := a.RunDueWithdrawals(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("due withdrawals", "error", err)
			}
			for _, w := range ws {
				log.Info("due withdrawal", "title", w.Title, "members", w.Members, "licences_ended", w.Ended, "done", w.Done)
			}
		}
	}
}

// LocalJobWorkers is how many slices of a fleet-wide job a local run
// runs at once (the Distributed Map's part).
const LocalJobWorkers = 4

// MemoryStores are m for every store.
func MemoryStores(m *memstore.Store) setup.Stores {
	return setup.Stores{Events: m, Views: m, History: m, Progress: m, Counters: m, Holders: m, Withdrawals: m, Refusals: m, Audit: m}
}

// StreamPoller returns a poller of the DynamoDB table's stream that runs
// the stream function through the Lambda JSON path behind the template's
// filter, as Lambda runs it: for local runs on DynamoDB Local, where no
// Lambda polls.
func (a *App) StreamPoller(ctx context.Context) (*eventsource.Poller, error) {
	return a.streamPoller(ctx, a.Config().Dynamo.Table)
}

// StreamPollers are the pollers of every table whose stream the stream
// function reads: the log table's and, in the regions layout, the viewing
// table's (as the template gives the function an event source mapping on
// each), each with a stream function of its own.
func (a *App) StreamPollers(ctx context.Context) ([]*eventsource.Poller, error) {
	c := a.Config().Dynamo
	tables := []string{c.Table}
	if c.ViewingTable != "" && c.ViewingTable != c.Table {
		tables = append(tables, c.ViewingTable)
	}
	var ps []*eventsource.Poller
	for _, t := range tables {
		p, err := a.streamPoller(ctx, t)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (a *App) streamPoller(ctx context.Context, table string) (*eventsource.Poller, error) {
	if a.Dynamo == nil {
		return nil, fmt.Errorf("stream poller: the store is not DynamoDB")
	}
	c := a.Config()
	arn, err := changestream.LatestStreamArn(ctx, a.DB, table)
	if err != nil {
		return nil, err
	}
	client, err := changestream.NewClient(ctx, c.Dynamo)
	if err != nil {
		return nil, err
	}
	filter, err := changestream.ParseFilters(changestream.EventFilters...)
	if err != nil {
		return nil, err
	}
	return &eventsource.Poller{Streams: client, StreamArn: arn, Handler: lambda.NewHandler(a.Processor().Handle), Filter: filter}, nil
}
