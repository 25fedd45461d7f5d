package benchreport

import (
	"fmt"
	"strings"
	"time"
)

// Prices are the AWS list prices the projections use: us-east-1, on-demand,
// from the public price pages as of the 2025 price list (DynamoDB's
// on-demand request prices after their November 2024 cut). docs/performance.md
// holds the same table; check them against the live pages before
// budgeting.
var Prices = struct {
	Date                   string
	DynamoReadPerMillion   float64 // read request units
	DynamoWritePerMillion  float64 // write request units
	LambdaArmPerGBSecond   float64
	LambdaPerMillion       float64 // requests
	StatesPerThousandTrans float64 // Standard workflows: state transitions
	HTTPAPIPerMillion      float64 // API Gateway HTTP API requests (first 300 M)
	DynamoStoragePerGB     float64 // a GB-month, standard table class
}{"2025 price list, us-east-1", 0.125, 0.625, 0.0000133334, 0.20, 0.025, 1.00, 0.25}

// The projected job: 100 M members, 1,000 segments (States.ArrayRange's
// most), one a batch, MaxConcurrency 1,000: every segment at once, each an
// invocation of the 512 MB job function handling 8 members at once.
const (
	projectedMembers     = 100e6
	projectedConcurrency = 1000
	jobMemoryGB          = 512.0 / 1024
	// The model of AWS: a DynamoDB request's time in the region, and the
	// members a slice handles at once (jobs.Stores.Workers in the job
	// function).
	awsRequestSeconds = 0.005
	awsMembersAtOnce  = 8
	lambdaTimeout     = 15 * time.Minute
)

// jobProjection is a fleet-wide job over projectedMembers.
type jobProjection struct {
	Rate                               float64 // members a second an invocation
	Wall                               time.Duration
	ReadUnits, GBSeconds, Transitions  float64
	DynamoCost, LambdaCost, StatesCost float64
}

// Total is the job's cost in dollars.
func (p jobProjection) Total() float64 { return p.DynamoCost + p.LambdaCost + p.StatesCost }

// projectJob projects the job from rate, the members a second one
// invocation handles, and rcu, the read units a member.
func projectJob(rate, rcu float64) jobProjection {
	if rate <= 0 {
		return jobProjection{}
	}
	busy := projectedMembers / rate // invocation-seconds
	p := jobProjection{
		Rate:      rate,
		Wall:      time.Duration(busy / projectedConcurrency * float64(time.Second)),
		ReadUnits: projectedMembers * rcu,
		GBSeconds: busy * jobMemoryGB,
		// The parent's four states; each segment's child execution: its
		// start, its task, its end.
		Transitions: 4 + 3*projectedConcurrency,
	}
	p.DynamoCost = p.ReadUnits / 1e6 * Prices.DynamoReadPerMillion
	p.LambdaCost = p.GBSeconds*Prices.LambdaArmPerGBSecond + (projectedConcurrency+1)/1e6*Prices.LambdaPerMillion
	p.StatesCost = p.Transitions / 1000 * Prices.StatesPerThousandTrans
	return p
}

// projections are the fleet what-if projected at this machine's rate (8
// members at once in a slice, on DynamoDB Local) and at the model of AWS
// (each member's requests at awsRequestSeconds, awsMembersAtOnce at once).
func (r Report) projections() (here, aws jobProjection) {
	x, ok := find(r.Jobs, "BenchmarkFleetJobs")
	if !ok {
		return
	}
	get := func(unit string) float64 { v, _ := x.Get(unit); return v }
	rcu := get("whatif-RCU/member")
	here = projectJob(get("whatif-members/s-8-at-once@1"), rcu)
	if q := get("whatif-requests/member"); q > 0 {
		aws = projectJob(awsMembersAtOnce/(q*awsRequestSeconds), rcu)
	}
	return here, aws
}

// verdictJob holds projections to the goal: under an hour and $100, each
// invocation within Lambda's 15 minutes.
func verdictJob(ps ...jobProjection) string {
	for _, p := range ps {
		if p.Wall >= time.Hour || p.Total() >= 100 || p.Wall >= lambdaTimeout {
			return "< 1 h and < $100, an invocation < 15 min (not met)"
		}
	}
	return "< 1 h and < $100, an invocation < 15 min (met)"
}

// jobsSection is the table of every job kind.
func (r Report) jobsSection(b *strings.Builder) {
	fmt.Fprintf(b, "`%s`\n\n", r.Jobs.Command)
	if r.Jobs.Skipped != "" {
		fmt.Fprintf(b, "Not run: %s.\n\n", r.Jobs.Skipped)
		return
	}
	x, ok := find(r.Jobs, "BenchmarkFleetJobs")
	if !ok {
		return
	}
	fmt.Fprintf(b, "`%s`: %s.\n\n", x.Name, descriptions[x.Name])
	get := func(unit string) float64 { v, _ := x.Get(unit); return v }
	b.WriteString("| job | members/s per worker @1 | @2 | @4 | read units a member | write units a member |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, kind := range []string{"whatif", "recount", "counters", "snapshots", "holders", "viewing-rows", "engagement"} {
		fmt.Fprintf(b, "| %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", kind, get(kind+"-members/s-per-worker@1"), get(kind+"-members/s-per-worker@2"),
			get(kind+"-members/s-per-worker@4"), get(kind+"-RCU/member"), get(kind+"-WCU/member"))
	}
	fmt.Fprintf(b, "\nThe what-if with 8 members at once in each slice, one worker: %.0f members/s (%.2f DynamoDB requests a member). "+
		"The counters' and engagement's write units are mostly their end: every counter scope (and its shards) and title-day written once, "+
		"a cost that grows with the catalogue, not the members.\n\n", get("whatif-members/s-8-at-once@1"), get("whatif-requests/member"))
}

func (r Report) jobProjection(b *strings.Builder) {
	here, aws := r.projections()
	if here.Rate == 0 {
		return
	}
	fmt.Fprintf(b, "The fleet what-if projected for %s members: %d segments, one a batch, MaxConcurrency %d, a %.0f MB job function handling "+
		"8 members at once; at this machine's rate (DynamoDB Local on two shared cores) and at a model of AWS (%.0f ms a DynamoDB request, "+
		"%d members at once); prices: %s (docs/performance.md):\n\n", grouped(projectedMembers), projectedConcurrency, projectedConcurrency,
		jobMemoryGB*1024, awsRequestSeconds*1000, awsMembersAtOnce, Prices.Date)
	b.WriteString("| figure | this machine's rate | model of AWS |\n| --- | ---: | ---: |\n")
	fmt.Fprintf(b, "| members a second an invocation | %.0f | %.0f |\n", here.Rate, aws.Rate)
	fmt.Fprintf(b, "| wall time (an invocation: a segment of %s members) | %s | %s |\n", grouped(projectedMembers/projectedConcurrency),
		shortDuration(here.Wall.Round(time.Second)), shortDuration(aws.Wall.Round(time.Second)))
	fmt.Fprintf(b, "| read units | %s | %s |\n", grouped(int64(here.ReadUnits)), grouped(int64(aws.ReadUnits)))
	fmt.Fprintf(b, "| Lambda GB-seconds (arm64) | %s | %s |\n", grouped(int64(here.GBSeconds)), grouped(int64(aws.GBSeconds)))
	fmt.Fprintf(b, "| state transitions | %s | %s |\n", grouped(int64(here.Transitions)), grouped(int64(aws.Transitions)))
	fmt.Fprintf(b, "| cost: DynamoDB reads / Lambda / Step Functions / total | $%.2f / $%.2f / $%.2f / $%.2f | $%.2f / $%.2f / $%.2f / $%.2f |\n\n",
		here.DynamoCost, here.LambdaCost, here.StatesCost, here.Total(), aws.DynamoCost, aws.LambdaCost, aws.StatesCost, aws.Total())
	fmt.Fprintf(b, "Verdict: %s.\n\n", verdictJob(here, aws))
}
