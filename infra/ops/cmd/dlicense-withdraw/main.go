// Command dlicense-withdraw ends the licences of a withdrawn title (or of
// every withdrawn title of a studio) across every member that holds them,
// with progress; stopped anywhere, it resumes where it stopped.
//
//	dlicense-withdraw -title tt-first-light
//	dlicense-withdraw -studio harbour
//
// Record the withdrawal first (POST /v1/admin/titles/{title}/withdrawal).
// It reads TABLE_NAME, AWS_REGION, DYNAMODB_ENDPOINT and POLICY_FILE like
// the functions.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/ops/awsenv"
	"github.com/dlicense/dlicense/infra/ops/progress"
	"github.com/dlicense/dlicense/infra/ops/withdraw"
	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	title := flag.String("title", "", "the withdrawn title")
	studio := flag.String("studio", "", "every withdrawn title of this studio")
	flag.Parse()
	if (*title == "") == (*studio == "") {
		fmt.Fprintln(os.Stderr, "usage: dlicense-withdraw -title ID | -studio ID")
		os.Exit(2)
	}
	if err := run(*title, *studio); err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-withdraw:", err)
		os.Exit(1)
	}
}

func run(title, studio string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
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
	policy, err := setup.Policy(os.Getenv("POLICY_FILE"))
	if err != nil {
		return err
	}
	svc := licensing.NewService(stores.Log, policy, setup.SystemClock{}, setup.RandomIDs{})
	svc.Cache = nil
	svc.Policy = (&licensing.Withdrawals{Base: policy, Store: stores.Withdrawals, Refresh: time.Hour, Clock: setup.SystemClock{}}).Policy
	titles := []string{title}
	if studio != "" {
		titles = nil
		ws, err := stores.Withdrawals.Withdrawals(ctx)
		if err != nil {
			return err
		}
		for _, w := range ws {
			if t, ok := policy.Title(w.Title); ok && t.Studio == studio {
				titles = append(titles, w.Title)
			}
		}
		if len(titles) == 0 {
			return fmt.Errorf("no title of studio %s is withdrawn", studio)
		}
		slices.Sort(titles)
	}
	for _, t := range titles {
		var meter dynamo.Meter
		bar := progress.New(-1, "ending the licences of "+t)
		w, err := withdraw.Run(dynamo.WithMeter(ctx, &meter), svc, stores.Withdrawals, stores.Holders, t, time.Now(), func(w licensing.Withdrawal) {
			bar.Describe(fmt.Sprintf("%s: %d members, %d licences ended", t, w.Members, w.Ended))
			bar.Set(w.Members)
		})
		bar.Finish()
		u := meter.Usage()
		fmt.Printf("%s: members %d, licences ended %d, done %v; %d round trips, %.1f read and %.1f write units\n",
			t, w.Members, w.Ended, w.Done, u.RoundTrips, u.ReadUnits, u.WriteUnits)
		if err != nil {
			return err
		}
	}
	return nil
}
