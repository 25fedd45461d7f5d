// Command dlicense-benchreport runs every benchmark of the service and
// prints one markdown report: the domain benchmarks, the DynamoDB Local
// benchmarks (each on a DynamoDB Local of its own), the load generator
// against the local API on DynamoDB Local at a few concurrency levels, the
// Lambda bootstrap sizes and the handler initialisation time.
//
//	dlicense-benchreport [-write docs/benchmarks.md] [-only domain,acquire,streams,realistic,viewing,load,sizes,startup]
//
// `make bench` runs it with -write docs/benchmarks.md. The command output
// goes to standard error as it runs; the report to standard output.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dlicense/dlicense/infra/dev/benchreport"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
)

var parts = []string{"domain", "acquire", "streams", "realistic", "routing", "viewing", "outage", "jobs", "load", "sizes", "startup", "coldstart"}

type options struct {
	write, only, phase                   string
	domainTime, acquireTime, streamsTime string
	viewingTime, realisticTime           string
	routingTime                          string
	outageTime                           string
	levels                               string
	load                                 benchreport.LoadOptions
	startupRuns, coldRuns                int
}

func main() {
	var o options
	flag.StringVar(&o.write, "write", "", "also write the report to this `file`")
	flag.StringVar(&o.only, "only", strings.Join(parts, ","), "the parts to measure")
	flag.StringVar(&o.domainTime, "domain-benchtime", "2s", "-benchtime of the domain benchmarks")
	flag.StringVar(&o.acquireTime, "acquire-benchtime", "300x", "-benchtime of the DynamoDB acquire benchmark")
	flag.StringVar(&o.streamsTime, "streams-benchtime", "3x", "-benchtime of the stream function benchmark")
	flag.StringVar(&o.realisticTime, "realistic-benchtime", "10x", "-benchtime of the realistic profile (rounds of bursts, a day apart)")
	flag.StringVar(&o.routingTime, "routing-benchtime", "5x", "-benchtime of the routing benchmark (rounds of bursts under each routing)")
	flag.StringVar(&o.viewingTime, "viewing-benchtime", "3x", "-benchtime of the viewing benchmark (rounds of 16 screens over 100 members)")
	flag.StringVar(&o.outageTime, "outage-benchtime", "1x", "-benchtime of the store outage drill (runs of about 70 s)")
	flag.StringVar(&o.levels, "levels", "1,4,16", "load generator concurrency levels")
	flag.IntVar(&o.load.Members, "load-members", 50, "simulated members per level")
	flag.IntVar(&o.load.Requests, "load-requests", 2000, "requests per level")
	flag.DurationVar(&o.load.Duration, "load-duration", time.Minute, "time bound per level")
	flag.IntVar(&o.load.Warmup, "load-warmup", 200, "unmeasured requests before the levels")
	flag.IntVar(&o.startupRuns, "startup-runs", 21, "handler initialisation runs")
	flag.IntVar(&o.coldRuns, "cold-runs", 11, "cold starts of each function under the Runtime Interface Emulator")
	flag.StringVar(&o.phase, "phase", "", "internal: `load` or `coldstart` runs that part alone (under withdynamodb) and prints it as JSON")
	flag.Parse()
	for _, l := range strings.Split(o.levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "dlicense-benchreport: -levels %q: want positive whole numbers\n", o.levels)
			os.Exit(2)
		}
		o.load.Levels = append(o.load.Levels, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch o.phase {
	case "load":
		err = loadPhase(ctx, o)
	case "coldstart":
		err = coldPhase(ctx, o)
	default:
		err = report(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-benchreport:", err)
		os.Exit(1)
	}
}

// coldPhase measures the cold starts on the DynamoDB Local that
// withdynamodb started for it, and prints them as JSON on standard output.
func coldPhase(ctx context.Context, o options) error {
	root, err := local.ModuleRoot()
	if err != nil {
		return err
	}
	endpoint, ok := dynamotest.EndpointFromEnv()
	if !ok {
		return errors.New("no DynamoDB Local (it needs Java 17+)")
	}
	cs, err := benchreport.MeasureColdStarts(ctx, root, endpoint, o.coldRuns)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(cs)
}

// loadPhase runs the load part on the DynamoDB Local that withdynamodb
// started for it, and prints the result as JSON on standard output.
func loadPhase(ctx context.Context, o options) error {
	root, err := local.ModuleRoot()
	if err != nil {
		return err
	}
	res := benchreport.Load{Options: o.load}
	if endpoint, ok := dynamotest.EndpointFromEnv(); !ok {
		if os.Getenv("CI") == "true" {
			return errors.New("no DynamoDB Local and CI=true")
		}
		res.Skipped = "DynamoDB Local could not start (it needs Java 17+)"
	} else if res, err = benchreport.RunLoad(ctx, root, endpoint, o.load, os.Stderr); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func report(ctx context.Context, o options) error {
	want := map[string]bool{}
	for _, p := range strings.Split(o.only, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(parts, p) {
			return fmt.Errorf("-only: unknown part %q (parts: %s)", p, strings.Join(parts, ", "))
		}
		want[p] = true
	}
	root, err := local.ModuleRoot()
	if err != nil {
		return err
	}
	start := time.Now()
	r := &benchreport.Runner{Root: root, Log: os.Stderr}
	rep := benchreport.Report{Machine: r.DetectMachine(ctx)}
	fail := func(part string, err error) {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", part, err))
		fmt.Fprintf(os.Stderr, "dlicense-benchreport: %s: %v\n", part, err)
	}
	if want["acquire"] || want["streams"] || want["realistic"] || want["routing"] || want["viewing"] || want["jobs"] || want["load"] || want["coldstart"] {
		tmp, err := os.MkdirTemp("", "benchreport-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := r.BuildWithDynamoDB(ctx, tmp); err != nil {
			return err
		}
	}
	bench := func(part string, dynamo bool, benchtime, pattern, pkg string) *benchreport.Bench {
		if !want[part] || ctx.Err() != nil {
			return nil
		}
		b, err := r.Bench(ctx, dynamo, "-run", "^$", "-bench", pattern, "-benchtime", benchtime, pkg)
		if err != nil {
			fail(part, err)
		}
		return &b
	}
	rep.Domain = bench("domain", false, o.domainTime, ".", "./domain/...")
	// Each on a DynamoDB Local of its own: one that has been running a
	// while is slower, which would weigh on the later figures.
	rep.Acquire = bench("acquire", true, o.acquireTime, "^BenchmarkAcquire$", "./infra/dynamo/")
	rep.Streams = bench("streams", true, o.streamsTime, "^BenchmarkStreamFunction$", "./infra/projector/")
	rep.Realistic = bench("realistic", true, o.realisticTime, "^BenchmarkRealisticLoad$", "./infra/projector/")
	rep.Routing = bench("routing", true, o.routingTime, "^BenchmarkRouting$", "./infra/projector/")
	rep.Viewing = bench("viewing", true, o.viewingTime, "^BenchmarkViewing$", "./infra/projector/")
	// The drill starts, hangs, stops and restarts a DynamoDB Local of its own.
	rep.Outage = bench("outage", false, o.outageTime, "^BenchmarkStoreOutage$", "./infra/dev/local/")
	rep.Jobs = bench("jobs", true, "1x", "^BenchmarkFleetJobs$", "./infra/jobs/")
	if want["load"] && ctx.Err() == nil {
		if l, err := load(ctx, r, o); err != nil {
			fail("load", err)
		} else {
			rep.Load = l
		}
	}
	if want["coldstart"] && ctx.Err() == nil {
		exe, err := os.Executable()
		if err == nil {
			var out []byte
			if out, err = r.Output(ctx, r.WithDynamoDB, "--", exe, "-phase", "coldstart", "-cold-runs", strconv.Itoa(o.coldRuns)); err == nil {
				err = json.Unmarshal(out, &rep.ColdStarts)
			}
		}
		if err != nil {
			fail("coldstart", err)
		}
	}
	if want["sizes"] && ctx.Err() == nil {
		if rep.Sizes, err = r.Sizes(ctx); err != nil {
			fail("sizes", err)
		}
	}
	if want["startup"] && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "\nhandler initialisation: %d runs each\n", o.startupRuns)
		if rep.Startup, err = benchreport.MeasureStartup(ctx, o.startupRuns); err != nil {
			fail("startup", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rep.Took = time.Since(start)
	md := rep.Markdown()
	fmt.Println()
	fmt.Print(md)
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d parts failed; %s left as it was", len(rep.Failures), orNone(o.write))
	}
	if o.write != "" {
		if err := os.WriteFile(o.write, []byte(md), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\nwrote %s\n", o.write)
	}
	return nil
}

func orNone(path string) string {
	if path == "" {
		return "no file"
	}
	return path
}

// load runs this command's load phase under withdynamodb, so that it has a
// DynamoDB Local of its own, and reads its JSON.
func load(ctx context.Context, r *benchreport.Runner, o options) (*benchreport.Load, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	out, err := r.Output(ctx, r.WithDynamoDB, "--", exe, "-phase", "load",
		"-levels", o.levels, "-load-members", strconv.Itoa(o.load.Members), "-load-requests", strconv.Itoa(o.load.Requests),
		"-load-duration", o.load.Duration.String(), "-load-warmup", strconv.Itoa(o.load.Warmup))
	if err != nil {
		return nil, err
	}
	var l benchreport.Load
	if err := json.Unmarshal(out, &l); err != nil {
		return nil, fmt.Errorf("reading the load phase's output: %w", err)
	}
	return &l, nil
}
