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
}{"2025 price list, us-east-1", 0.125, 0.625, 0.0000133334, 0.20, 0.025, 1.00}

// The projected job: 100 M members, MaxConcurrency 1,000 (a segment each),
// batches of 4 segments, a 512 MB job function.
const (
	projectedMembers     = 100e6
	projectedConcurrency = 1000
	jobMemoryGB          = 0.5
	segmentsPerBatch     = 4
)

// jobProjection is a fleet-wide job over projectedMembers, from the
// measured members per second per worker and read units per member.
type jobProjection struct {
	Wall                               time.Duration
	ReadUnits, GBSeconds, Transitions  float64
	DynamoCost, LambdaCost, StatesCost float64
}

// Total is the job's cost in dollars.
func (p jobProjection) Total() float64 { return p.DynamoCost + p.LambdaCost + p.StatesCost }

func projectJob(perWorker, rcu float64) jobProjection {
	if perWorker <= 0 {
		return jobProjection{}
	}
	busy := projectedMembers / perWorker // worker-seconds
	batches := float64(projectedConcurrency) / segmentsPerBatch
	p := jobProjection{
		Wall:      time.Duration(busy / projectedConcurrency * float64(time.Second)),
		ReadUnits: projectedMembers * rcu,
		GBSeconds: busy * jobMemoryGB,
		// The parent's four states; each batch's child execution: its
		// start, its task, its end.
		Transitions: 4 + 3*batches,
	}
	p.DynamoCost = p.ReadUnits / 1e6 * Prices.DynamoReadPerMillion
	p.LambdaCost = p.GBSeconds*Prices.LambdaArmPerGBSecond + (batches+1)/1e6*Prices.LambdaPerMillion
	p.StatesCost = p.Transitions / 1000 * Prices.StatesPerThousandTrans
	return p
}

// verdictJob holds a projection to the goal: under an hour and $100.
func verdictJob(p jobProjection) string {
	if p.Wall < time.Hour && p.Total() < 100 {
		return "< 1 h and < $100 (met)"
	}
	return "< 1 h and < $100 (not met)"
}

func (r Report) jobProjection(b *strings.Builder) {
	x, ok := find(r.Jobs, "BenchmarkFleetWhatIf")
	if !ok {
		return
	}
	per, _ := x.Get("members/s-per-worker@1")
	rcu, _ := x.Get("RCU/member")
	p := projectJob(per, rcu)
	fmt.Fprintf(b, "Projected for %s members at MaxConcurrency %d (a segment each, batches of %d, a %.0f MB job function), "+
		"from one worker's rate here (%.0f members/s; DynamoDB serves more than DynamoDB Local on two shared cores) and %.2f read units a member; "+
		"prices: %s (docs/performance.md):\n\n", grouped(projectedMembers), projectedConcurrency, segmentsPerBatch, jobMemoryGB*1000, per, rcu, Prices.Date)
	b.WriteString("| figure | value |\n| --- | ---: |\n")
	fmt.Fprintf(b, "| wall time | %s |\n", shortDuration(p.Wall.Round(time.Second)))
	fmt.Fprintf(b, "| read units | %s |\n", grouped(int64(p.ReadUnits)))
	fmt.Fprintf(b, "| Lambda GB-seconds (arm64) | %s |\n", grouped(int64(p.GBSeconds)))
	fmt.Fprintf(b, "| state transitions | %s |\n", grouped(int64(p.Transitions)))
	fmt.Fprintf(b, "| cost: DynamoDB reads / Lambda / Step Functions / total | $%.2f / $%.2f / $%.2f / $%.2f |\n\n", p.DynamoCost, p.LambdaCost, p.StatesCost, p.Total())
}
