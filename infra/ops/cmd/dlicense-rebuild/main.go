// Command dlicense-rebuild rebuilds snapshots from the member event logs.
//
//	dlicense-rebuild -member m-1        one member's snapshot
//	dlicense-rebuild -all               every member's snapshot (scans the table)
//	dlicense-rebuild -counters          every counter, recounted from every log
//	                                    (pause the stream function first)
//	dlicense-rebuild -viewing -member m-1
//	dlicense-rebuild -viewing -all      recently watched rows, rebuilt from the
//	                                    history entries
//	dlicense-rebuild -holders -all      the index of title holders, from every
//	                                    log (for logs older than the index)
//	dlicense-rebuild -engagement        the rows and every engagement count,
//	                                    recounted from every history (pause the
//	                                    stream function first)
//
// It reads TABLE_NAME, AWS_REGION, DYNAMODB_ENDPOINT and POLICY_FILE like
// the functions (snapshots keep what the policy's quotas can look at).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/ops/awsenv"
	"github.com/dlicense/dlicense/infra/ops/progress"
	"github.com/dlicense/dlicense/infra/ops/rebuild"
	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	member := flag.String("member", "", "rebuild this member")
	all := flag.Bool("all", false, "rebuild every member")
	counters := flag.Bool("counters", false, "recount every counter from every log")
	views := flag.Bool("viewing", false, "rebuild the recently watched rows from the history entries")
	engagement := flag.Bool("engagement", false, "rebuild the rows and recount every engagement count from every history")
	holders := flag.Bool("holders", false, "record every member's titles in the index of title holders, from the logs")
	flag.Parse()
	if *engagement {
		*views, *all = true, true
	}
	if *counters {
		*all = true
	}
	if (*member == "") == !*all || *counters && *views {
		fmt.Fprintln(os.Stderr, "usage: dlicense-rebuild -member ID | -all | -counters | -holders (-member ID | -all) | -viewing (-member ID | -all) | -engagement")
		os.Exit(2)
	}
	if *views {
		if err := runViewing(*member, *engagement); err != nil {
			fmt.Fprintln(os.Stderr, "dlicense-rebuild:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*member, *all, *counters, *holders); err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-rebuild:", err)
		os.Exit(1)
	}
}

func run(member string, all, counters, holders bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	store, policy, err := open(ctx)
	if err != nil {
		return err
	}
	members := []string{member}
	if all {
		members = nil
		spin := progress.New(-1, "listing members")
		if err := store.Log.Members(ctx, func(m string) error {
			members = append(members, m)
			return spin.Add(1)
		}); err != nil {
			return err
		}
		spin.Finish()
	}
	var meter dynamo.Meter
	if holders {
		bar := progress.New(int64(len(members)), "recording holders")
		n, err := rebuild.Holders(dynamo.WithMeter(ctx, &meter), store.Log, store.Holders, members, func(done int) { bar.Set(done) })
		bar.Finish()
		u := meter.Usage()
		fmt.Printf("members %d, holders recorded %d; %d round trips, %.1f read and %.1f write units\n", len(members), n, u.RoundTrips, u.ReadUnits, u.WriteUnits)
		return err
	}
	if counters {
		bar := progress.New(int64(len(members)), "recounting")
		r, err := rebuild.Counters(dynamo.WithMeter(ctx, &meter), store.Log, store.Counters, members, func(done int) { bar.Set(done) })
		bar.Finish()
		u := meter.Usage()
		fmt.Printf("members %d, events %d, scopes written %d, stale scopes cleared %d; %d round trips, %.1f read and %.1f write units\n",
			r.Members, r.Events, r.Scopes, r.Cleared, u.RoundTrips, u.ReadUnits, u.WriteUnits)
		return err
	}
	bar := progress.New(int64(len(members)), "rebuilding snapshots")
	r := rebuild.Members(dynamo.WithMeter(ctx, &meter), store.Log, policy, members, func(done int) { bar.Set(done) })
	bar.Finish()
	u := meter.Usage()
	fmt.Printf("members %d, events folded %d, snapshots written %d, up to date %d, empty %d, failed %d; %d round trips, %.1f read and %.1f write units\n",
		r.Members, r.Events, r.Written, r.UpToDate, r.Empty, r.Failed, u.RoundTrips, u.ReadUnits, u.WriteUnits)
	if r.LastError != nil {
		return r.LastError
	}
	return nil
}

// runViewing rebuilds the viewing read models of one member ("" for every
// member with a history).
func runViewing(member string, engagement bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	store, policy, err := open(ctx)
	if err != nil {
		return err
	}
	members := []string{member}
	if member == "" {
		members = nil
		spin := progress.New(-1, "listing members with a history")
		if err := store.History.ViewingMembers(ctx, func(m string) error {
			members = append(members, m)
			return spin.Add(1)
		}); err != nil {
			return err
		}
		spin.Finish()
	}
	var meter dynamo.Meter
	bar := progress.New(int64(len(members)), "rebuilding rows")
	r, err := rebuild.Viewing(dynamo.WithMeter(ctx, &meter), store.History, policy, members, engagement, func(done int) { bar.Set(done) })
	bar.Finish()
	u := meter.Usage()
	fmt.Printf("members %d, history entries %d, rows written %d, erasures under way skipped %d, engagement counts written %d (%d items cleared); %d round trips, %.1f read and %.1f write units\n",
		r.Members, r.Entries, r.Rows, r.Erasing, r.Counts, r.Cleared, u.RoundTrips, u.ReadUnits, u.WriteUnits)
	return err
}

// open is the table and the policy, from the environment.
func open(ctx context.Context) (dynamo.Stores, *licensing.Policy, error) {
	cfg, err := dynamo.ConfigFromEnv()
	if err != nil {
		return dynamo.Stores{}, nil, err
	}
	if cfg, err = awsenv.Resolve(ctx, cfg); err != nil {
		return dynamo.Stores{}, nil, err
	}
	db, err := dynamo.NewClient(ctx, cfg)
	if err != nil {
		return dynamo.Stores{}, nil, err
	}
	policy, err := setup.Policy(os.Getenv("POLICY_FILE"))
	if err != nil {
		return dynamo.Stores{}, nil, err
	}
	return dynamo.Layout(db, cfg.Tables()), policy, nil
}
