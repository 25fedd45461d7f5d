package benchreport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/loadgen"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

// LoadOptions say how hard to load the local API.
type LoadOptions struct {
	// Levels are the concurrency levels, each run in turn.
	Levels []int
	// Members and Requests are per level; Duration bounds each level too.
	Members  int
	Requests int
	Duration time.Duration
	// Warmup requests go first, unmeasured (DynamoDB Local's JIT, the
	// connection pools).
	Warmup int
}

// Load is what the load generator measured at each concurrency level.
type Load struct {
	Options LoadOptions
	Levels  []LoadLevel
	// Skipped says why the load did not run (no DynamoDB Local).
	Skipped string
}

// LoadLevel is one concurrency level's run.
type LoadLevel struct {
	Concurrency int
	Summary     loadgen.Summary
}

// RunLoad starts the local API in this process on DynamoDB Local at
// endpoint (a table made from root's template.yaml, the stream function
// polling its stream, as `make run-dynamodb` runs it) and runs the load
// generator against it at each level. Progress goes to log, and so do
// warnings and errors: RunLoad sets slog's default logger, through which
// the handler logs every request, to write only those there.
func RunLoad(ctx context.Context, root, endpoint string, o LoadOptions, log io.Writer) (Load, error) {
	res := Load{Options: o}
	// The handler logs a line per request: keep warnings and errors only,
	// and nothing once the run is over, when stopping the stream poller
	// cuts its batch in flight short.
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	slog.SetDefault(slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: &level})))
	issuerKey, err := tokens.GenerateKey("bench-issuer")
	if err != nil {
		return res, err
	}
	signing, err := tokens.GenerateKey("bench-licence")
	if err != nil {
		return res, err
	}
	cfg := setup.Config{SigningKeys: signing.Encode(), Issuer: "dlicense-bench", PlanClaim: "plan", QuietMetrics: true,
		Dynamo: dynamo.Config{Table: fmt.Sprintf("bench-load-%d", time.Now().UnixNano()), Endpoint: endpoint}}
	db, err := dynamo.NewClient(ctx, cfg.Dynamo)
	if err != nil {
		return res, err
	}
	in, err := dynamotest.TableFromTemplate(filepath.Join(root, "template.yaml"), dynamotest.TableLogicalID, cfg.Dynamo.Table)
	if err != nil {
		return res, err
	}
	if err := dynamotest.CreateTable(ctx, db, in); err != nil {
		return res, err
	}
	parts, err := local.Build(ctx, "dynamo", cfg)
	if err != nil {
		return res, err
	}
	poller, err := parts.StreamPoller(ctx)
	if err != nil {
		return res, err
	}
	pollCtx, stopPolling := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		if err := poller.Run(pollCtx); err != nil && !errors.Is(err, context.Canceled) {
			slog.Error("stream poller stopped", "error", err)
		}
	}()
	defer func() { level.Set(slog.LevelError + 1); stopPolling(); <-polled }()

	issuer := devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, issuerKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	gw := local.NewGateway(parts.Handler(), issuer, httpapi.PublicRoutes())
	// API Gateway's throttles, as the template sets them: a load past them
	// meets 429s as it would in AWS.
	throttles, err := local.ThrottlesFromTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		return res, err
	}
	gw.Throttle(throttles)
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer local.Shutdown(srv)

	token := func(member, plan string) string {
		tok, _ := issuer.Mint(member, plan, nil, time.Hour+o.Duration*time.Duration(len(o.Levels)+1), time.Now())
		return tok
	}
	base := "http://" + ln.Addr().String()
	if o.Warmup > 0 {
		fmt.Fprintf(log, "load: warming up with %d requests\n", o.Warmup)
		s, err := loadgen.Run(ctx, loadgen.Config{BaseURL: base, Members: o.Members, Concurrency: 4, Requests: o.Warmup, Duration: o.Duration, Seed: 99, Token: token}, nil)
		if err != nil {
			return res, err
		}
		if s.Errors() > 0 {
			return res, fmt.Errorf("warm-up: %d errors, first: %s", s.Errors(), s.FirstError)
		}
	}
	for i, c := range o.Levels {
		s, err := loadgen.Run(ctx, loadgen.Config{
			BaseURL: base, Members: o.Members, Concurrency: c, Requests: o.Requests, Duration: o.Duration, Seed: uint64(i + 1), Token: token,
		}, nil)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(log, "load: concurrency %d: %d requests in %.1fs, %.0f req/s, acquire p50 %s p99 %s, %d errors\n",
			c, s.Requests, s.Elapsed.Seconds(), s.Throughput, loadgen.Millis(s.AcquireLatency.P50), loadgen.Millis(s.AcquireLatency.P99), s.Errors())
		res.Levels = append(res.Levels, LoadLevel{Concurrency: c, Summary: s})
	}
	return res, nil
}
