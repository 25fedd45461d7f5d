// Command dlicense-load sends a realistic mix of requests to the local
// licensing API (`make run` must be running from this checkout: the member
// tokens are signed with its dev keys in .cache/dev) and prints a markdown
// summary: counts by operation and status, latency percentiles, throughput.
//
//	dlicense-load -url http://127.0.0.1:3000 -members 50 -concurrency 8 -requests 2000 -duration 60s
//
// It stops at -requests or -duration, whichever comes first, and only
// targets loopback addresses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/loadgen"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/ops/progress"
)

func main() {
	cfg := loadgen.Config{}
	flag.StringVar(&cfg.BaseURL, "url", "http://127.0.0.1:3000", "the local API (loopback only)")
	flag.IntVar(&cfg.Members, "members", 50, "simulated members")
	flag.IntVar(&cfg.Concurrency, "concurrency", 8, "requests in flight")
	flag.IntVar(&cfg.Requests, "requests", 2000, "stop after this many requests (0: no bound)")
	flag.DurationVar(&cfg.Duration, "duration", 60*time.Second, "stop after this long (0: no bound)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the members' plans, devices and choices")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-load:", err)
		os.Exit(1)
	}
}

func run(cfg loadgen.Config) error {
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if err := loadgen.CheckLoopback(cfg.BaseURL); err != nil {
		return err
	}
	root, err := local.ModuleRoot()
	if err != nil {
		return err
	}
	keys, err := local.LoadKeys(filepath.Join(root, ".cache", "dev"))
	if err != nil {
		return err
	}
	issuer := devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, keys.Issuer)
	ttl := max(cfg.Duration+time.Hour, 12*time.Hour)
	var mintErr error
	cfg.Token = func(member, plan string) string {
		tok, err := issuer.Mint(member, plan, nil, ttl, time.Now())
		if err != nil && mintErr == nil {
			mintErr = err
		}
		return tok
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := preflight(ctx, cfg); err != nil {
		return err
	}

	total := int64(cfg.Requests)
	if total == 0 {
		total = -1 // a spinner: the run is bounded by time only
	}
	bar := progress.New(total, "requests")
	s, err := loadgen.Run(ctx, cfg, func(done int) { bar.Set(done) })
	bar.Finish()
	if mintErr != nil {
		return mintErr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Printf("\n## Load: %d members, concurrency %d, against %s\n\n", cfg.Members, cfg.Concurrency, cfg.BaseURL)
	if err != nil {
		fmt.Printf("Interrupted: the figures cover the requests completed before.\n\n")
	}
	fmt.Print(s.Markdown())
	if s.Status[http.StatusUnauthorized] > 0 {
		return fmt.Errorf("%d requests were refused as unauthorized: is the server running from this checkout (same .cache/dev keys)?", s.Status[http.StatusUnauthorized])
	}
	if s.Errors() > 0 {
		return fmt.Errorf("%d server errors and %d transport errors", s.ServerErrors, s.TransportErrors)
	}
	return nil
}

// preflight checks the server answers and accepts this checkout's tokens,
// with a read that changes nothing.
func preflight(ctx context.Context, cfg loadgen.Config) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.BaseURL+"/v1/devices/preflight/licences", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token("load-preflight", "basic"))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("no answer from %s (start the server first: make run): %w", cfg.BaseURL, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%s refused a dev token: run the server from this checkout, so both use .cache/dev", cfg.BaseURL)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s answered the preflight sync with %s", cfg.BaseURL, resp.Status)
	}
	return nil
}
