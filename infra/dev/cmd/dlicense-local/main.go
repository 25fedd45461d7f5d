// Command dlicense-local runs the licensing API on 127.0.0.1 for
// development, with the stream function beside it (keeping snapshots up as
// in AWS), and mints dev member tokens for it.
//
//	dlicense-local serve [-addr 127.0.0.1:3000] [-store memory|dynamo]
//	dlicense-local token -member m-1 -plan premium [-scope admin] [-ttl 12h]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "token":
		err = token(os.Args[2:])
	case "pseudonym":
		err = pseudonym(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-local:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dlicense-local serve [-addr 127.0.0.1:3000] [-store memory|dynamo]\n       dlicense-local token -member ID -plan PLAN [-scope S] [-ttl 12h]")
	os.Exit(2)
}

func keys() (local.Keys, string, error) {
	root, err := local.ModuleRoot()
	if err != nil {
		return local.Keys{}, "", err
	}
	k, err := local.LoadKeys(filepath.Join(root, ".cache", "dev"))
	return k, root, err
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "loopback address to listen on")
	store := fs.String("store", "memory", "memory (embedded) or dynamo (DynamoDB Local at $DYNAMODB_ENDPOINT)")
	outage := fs.Duration("stream-outage", 0, "with -store dynamo: the stream function fails for this long after the start, so batches go to the dead letters (to try dlicense-redrive)")
	fs.Parse(args)
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("-addr %q: the dev server listens on loopback only", *addr)
	}
	k, root, err := keys()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if *store == "dynamo" && os.Getenv("DYNAMODB_ENDPOINT") == "" {
		return errors.New("-store dynamo needs DYNAMODB_ENDPOINT (make run-dynamodb starts DynamoDB Local)")
	}
	// Every setting the Lambda reads from its environment, as it reads it.
	cfg, err := local.ServeConfig(k)
	if err != nil {
		return err
	}
	if *store == "dynamo" {
		db, err := dynamo.NewClient(ctx, cfg.Dynamo)
		if err != nil {
			return err
		}
		// The table, or with VIEWING_TABLE_NAME and REGIONAL_TABLE_NAME the
		// three of the regions layout (docs/regions.md), as the template
		// defines the table.
		for _, name := range slices.Compact([]string{cfg.Dynamo.Table, cfg.Dynamo.ViewingTable, cfg.Dynamo.RegionalTable}) {
			if name == "" {
				continue
			}
			in, err := dynamotest.TableFromTemplate(filepath.Join(root, "template.yaml"), dynamotest.TableLogicalID, name)
			if err != nil {
				return err
			}
			if err := dynamotest.CreateTable(ctx, db, in); err != nil {
				return err
			}
		}
	}
	app, err := local.Build(ctx, *store, cfg)
	if err != nil {
		return err
	}
	how, stopStreams, err := streamFunction(ctx, app, *outage)
	if err != nil {
		return err
	}
	defer stopStreams()
	// The sweep of silent views, every minute, as the template schedules it.
	sweeps, stopSweeps := context.WithCancel(ctx)
	defer stopSweeps()
	go app.RunSweeps(sweeps, slog.Default())
	issuer := devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, k.Issuer)
	gw := local.NewGateway(app.Handler(), issuer, httpapi.PublicRoutes())
	gw.AdminScope, gw.StatusScope = app.Config().AdminScope, app.Config().StatusScope
	// API Gateway's throttles, as the template sets them.
	throttles, err := local.ThrottlesFromTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	gw.Throttle(throttles)
	srv := &http.Server{Addr: *addr, Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	tok, err := issuer.Mint("m-demo", "premium", nil, 12*time.Hour, time.Now())
	if err != nil {
		return err
	}
	fmt.Printf("dlicense API on http://%s (store: %s)\n", ln.Addr(), *store)
	from := "the shipped policy"
	if cfg.PolicyFile != "" {
		from = "POLICY_FILE=" + cfg.PolicyFile
	}
	fmt.Printf("policy: version %s (%s)\n", app.Policy().Version, from)
	fmt.Printf("stream function: %s (a snapshot every %d events); silent views closed every %v\n", how, app.Config().SnapshotEvery, viewing.SweepEvery)
	fmt.Printf("try:\n  curl -s -X POST http://%s/v1/devices/phone-1/licences -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"title_id\":\"tt-first-light\"}'\n", ln.Addr(), tok)
	fmt.Printf("watch (the same token):\n  curl -s -X POST http://%s/v1/devices/tv/views -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"title_id\":\"tt-first-light\"}'\n", ln.Addr(), tok)
	fmt.Printf("throttles (template.yaml): %.0f requests/s a route (burst %d), heartbeats %.0f/s, operators' routes %.0f/s\n",
		throttles.Default.Rate, throttles.Default.Burst, throttles.Routes["POST /v1/devices/{device}/views/{view}/heartbeat"].Rate, throttles.Routes["GET /v1/admin/policy"].Rate)
	fmt.Println("more tokens: make token MEMBER=m-1 PLAN=basic")
	fmt.Printf("support console: http://%s/console (paste the token of: make -s token MEMBER=ops-1 SCOPE=admin)\n", ln.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-stop:
		slog.Info("shutting down")
		return local.Shutdown(srv)
	case err := <-errc:
		return err
	}
}

// streamFunction runs the stream function beside the API, fed as Lambda
// would feed it: in-process behind the embedded store, or by polling
// DynamoDB Local's stream. It says how, and returns a function stopping it.
func streamFunction(ctx context.Context, app *local.App, outage time.Duration) (string, func(), error) {
	if app.Memory != nil {
		local.FeedFromMemory(app.Memory, lambda.NewHandler(app.Processor().Handle), slog.Default())
		return "in-process, on every append", func() {}, nil
	}
	pollers, err := app.StreamPollers(ctx)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var arns []string
	for _, poller := range pollers {
		// Batches the function gives up on are written as Lambda's
		// on-failure destination would carry them, for dlicense-redrive.
		if root, err := local.ModuleRoot(); err == nil {
			poller.DeadLetterDir = filepath.Join(root, ".cache", "dead-letters")
		}
		if outage > 0 {
			until, h := time.Now().Add(outage), poller.Handler
			poller.Handler = lambda.NewHandler(func(ctx context.Context, ev json.RawMessage) (json.RawMessage, error) {
				if time.Now().Before(until) {
					return nil, errors.New("stream function outage (-stream-outage)")
				}
				out, err := h.Invoke(ctx, ev)
				return json.RawMessage(out), err
			})
			poller.Retries = 1
		}
		wg.Go(func() {
			if err := poller.Run(ctx); err != nil {
				slog.Error("stream poller stopped", "stream", poller.StreamArn, "error", err)
			}
		})
		arns = append(arns, poller.StreamArn)
	}
	return "polling " + strings.Join(arns, " and "), func() { cancel(); wg.Wait() }, nil
}

func token(args []string) error {
	fs := flag.NewFlagSet("token", flag.ExitOnError)
	member := fs.String("member", "", "member id (the token's sub)")
	plan := fs.String("plan", "premium", "plan claim")
	scope := fs.String("scope", "", "space-separated scopes; admin and licence-status stand for the configured ones (ADMIN_SCOPE, STATUS_SCOPE: dlicense/admin, dlicense/licence-status)")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime")
	fs.Parse(args)
	if *member == "" {
		return errors.New("token: -member is required")
	}
	k, _, err := keys()
	if err != nil {
		return err
	}
	cfg, err := local.ServeConfig(k)
	if err != nil {
		return err
	}
	scopes := strings.Fields(*scope)
	for i, s := range scopes {
		switch s {
		case "admin":
			scopes[i] = cfg.AdminScope
		case "licence-status":
			scopes[i] = cfg.StatusScope
		}
	}
	if p, ok := servedPolicy(cfg); ok {
		if _, known := p.Plan(*plan); !known {
			fmt.Fprintf(os.Stderr, "token: plan %q is not in the policy (version %s): the API will refuse it\n", *plan, p.Version)
		}
	}
	tok, err := devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, k.Issuer).Mint(*member, *plan, scopes, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

// servedPolicy is the policy the local server would serve with cfg.
func servedPolicy(cfg setup.Config) (*licensing.Policy, bool) {
	p, err := setup.Policy(cfg.PolicyFile)
	return p, err == nil
}

// pseudonym prints the pseudonym the logs show for a member (the request
// lines' member=, the stream function's): how support finds a member's
// lines without the logs holding member ids.
func pseudonym(args []string) error {
	fs := flag.NewFlagSet("pseudonym", flag.ExitOnError)
	member := fs.String("member", "", "member id")
	fs.Parse(args)
	if *member == "" {
		return errors.New("pseudonym: -member is required")
	}
	fmt.Println(kernel.Pseudonym(*member))
	return nil
}
