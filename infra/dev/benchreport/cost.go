package benchreport

import (
	"fmt"
	"strings"
)

// The cost model: what DynamoDB bills, measured (request units per
// operation, from the benchmarks), and what the rest bills, modelled from
// the template and a stated member profile, at the prices of Prices.
const (
	// A Lambda's billed time per request: its DynamoDB requests at
	// awsRequestSeconds each, plus a millisecond of work.
	lambdaWorkSeconds = 0.001
	apiMemoryGB       = 256.0 / 1024 // template.yaml Globals MemorySize
	streamMemoryGB    = 256.0 / 1024
	jobsMemoryGB      = 512.0 / 1024 // the job function, which sweeps silent views
	// Records per stream function invocation at scale (BatchSize 100 and
	// a batching window; a busy shard fills batches).
	recordsPerInvocation = 10.0
	heartbeatsPerHour    = 3600 / 30 // the policy's 30 s interval
	// The sweep of silent views reads every open view once a minute
	// (viewing.SweepEvery).
	sweepsPerHour = 60
)

// memberMonth is the profile of a member-month the model prices.
var memberMonth = struct {
	ViewingHours, Views, Acquisitions, OtherLicenceCalls, Reads float64
	StoredKB                                                    float64
}{
	ViewingHours:      40, // about 80 minutes a day
	Views:             40, // an hour a view on average
	Acquisitions:      4,
	OtherLicenceCalls: 12, // syncs, renewals, releases, playback uploads
	Reads:             60, // rows, resume reads, history pages
	// Held per member: a year of logs (some 60 events at 300 B), history
	// entries (480 at 400 B), rows, resume points (about 30), screens.
	StoredKB: 18 + 192 + 10 + 15 + 2,
}

// opCost is what one operation costs, in dollars, by service.
type opCost struct{ APIGateway, Lambda, DynamoDB float64 }

func (c opCost) total() float64 { return c.APIGateway + c.Lambda + c.DynamoDB }

func (c opCost) times(n float64) opCost {
	return opCost{c.APIGateway * n, c.Lambda * n, c.DynamoDB * n}
}

func (c opCost) plus(o opCost) opCost {
	return opCost{c.APIGateway + o.APIGateway, c.Lambda + o.Lambda, c.DynamoDB + o.DynamoDB}
}

// apiCall prices one API request making requests DynamoDB requests that
// bill rcu and wcu, and what the stream function then does with its
// record(s): streamRecords records, billing streamRCU and streamWCU.
func apiCall(requests, rcu, wcu, streamRecords, streamRequests, streamRCU, streamWCU float64) opCost {
	lambda := func(seconds, memGB float64) float64 { return seconds * memGB * Prices.LambdaArmPerGBSecond }
	c := opCost{APIGateway: Prices.HTTPAPIPerMillion / 1e6}
	c.Lambda = lambda(requests*awsRequestSeconds+lambdaWorkSeconds, apiMemoryGB) + Prices.LambdaPerMillion/1e6
	if streamRecords > 0 {
		c.Lambda += lambda(streamRequests*awsRequestSeconds+lambdaWorkSeconds*streamRecords, streamMemoryGB) +
			streamRecords/recordsPerInvocation*Prices.LambdaPerMillion/1e6
	}
	c.DynamoDB = (rcu+streamRCU)/1e6*Prices.DynamoReadPerMillion + (wcu+streamWCU)/1e6*Prices.DynamoWritePerMillion
	return c
}

// costs are the modelled operations, from the measured units; ok is false
// without the viewing and realistic benchmarks.
type costs struct {
	Heartbeat, Start, Stop, Acquisition, Read, ViewingHour, MemberMonth opCost
	// Sweep is an open view's share of one sweep of silent views.
	Sweep         opCost
	HeartbeatWCU  float64 // all-in: API and stream function
	Storage, Jobs float64 // a member-month's
}

func (r Report) costs() (costs, bool) {
	v, okV := find(r.Viewing, "BenchmarkViewing")
	a, okA := find(r.Realistic, "BenchmarkRealisticLoad")
	if !okV || !okA {
		return costs{}, false
	}
	gv := func(u string) float64 { x, _ := v.Get(u); return x }
	ga := func(u string) float64 { x, _ := a.Get(u); return x }
	streamStartStop := gv("stream-WCU/start-or-stop-paced")
	var c costs
	c.HeartbeatWCU = gv("WCU/heartbeat") + gv("stream-WCU/heartbeat-paced")
	c.Heartbeat = apiCall(gv("requests/heartbeat"), gv("RCU/heartbeat"), gv("WCU/heartbeat"),
		1, gv("stream-WCU/heartbeat-paced")+gv("stream-RCU/heartbeat-paced"), gv("stream-RCU/heartbeat-paced"), gv("stream-WCU/heartbeat-paced"))
	c.Start = apiCall(gv("requests/start"), gv("RCU/start"), gv("WCU/start"), 1, streamStartStop, 0, streamStartStop)
	c.Stop = apiCall(gv("requests/stop"), gv("RCU/stop"), gv("WCU/stop"), 1, streamStartStop, 0, streamStartStop)
	c.Acquisition = apiCall(ga("requests-mean/acquire"), ga("RCU-mean/acquire"), ga("WCU-mean/acquire"), 1, ga("stream-WCU/event"), 0, ga("stream-WCU/event"))
	c.Read = apiCall(gv("requests/resume"), gv("RCU/resume"), 0, 0, 0, 0, 0)
	c.Sweep = opCost{
		Lambda:   gv("sweep-requests/open-view") * awsRequestSeconds * jobsMemoryGB * Prices.LambdaArmPerGBSecond,
		DynamoDB: gv("sweep-RCU/open-view") / 1e6 * Prices.DynamoReadPerMillion,
	}
	c.ViewingHour = c.Heartbeat.times(heartbeatsPerHour).plus(c.Start).plus(c.Stop).plus(c.Sweep.times(sweepsPerHour))
	m := memberMonth
	c.Storage = m.StoredKB / (1024 * 1024) * Prices.DynamoStoragePerGB
	if here, aws := r.projections(); aws.Rate > 0 {
		c.Jobs = max(here.Total(), aws.Total()) / projectedMembers // a fleet what-if a month
	}
	c.MemberMonth = c.Heartbeat.times(m.ViewingHours * heartbeatsPerHour).plus(c.Sweep.times(m.ViewingHours * sweepsPerHour)).
		plus(c.Start.times(m.Views)).plus(c.Stop.times(m.Views)).
		plus(c.Acquisition.times(m.Acquisitions + m.OtherLicenceCalls)).
		plus(c.Read.times(m.Reads))
	return c, true
}

// costSection writes the cost model.
func (r Report) costSection(b *strings.Builder) {
	c, ok := r.costs()
	if !ok {
		return
	}
	b.WriteString("## Cost model\n\n")
	fmt.Fprintf(b, "DynamoDB's request units are the ones measured above (BenchmarkViewing, each heartbeat's stream record handled "+
		"alone as in real time; BenchmarkRealisticLoad for acquisitions); the rest is modelled: API Gateway HTTP API per request, "+
		"Lambda arm64 at %.0f MB billed for its DynamoDB requests at %.0f ms each plus %.0f ms of work, the stream function's "+
		"records %.0f to an invocation. Prices: %s (docs/performance.md). A heartbeat costs %.2f write units all-in (the API's "+
		"write and the stream function's). A viewing hour includes the sweep of silent views reading the view once a minute "+
		"(%.2f read units a minute, measured; the job function at %.0f MB); its fixed part, 16 invocations and an Express "+
		"execution a minute, is under a dollar a month a region and left out.\n\n",
		apiMemoryGB*1024, awsRequestSeconds*1000, lambdaWorkSeconds*1000, recordsPerInvocation, Prices.Date, c.HeartbeatWCU,
		c.Sweep.DynamoDB/Prices.DynamoReadPerMillion*1e6, jobsMemoryGB*1024)
	b.WriteString("| per | API Gateway | Lambda | DynamoDB | Step Functions | total |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	row := func(what string, oc opCost, n float64, extra float64) {
		x := oc.times(n)
		fmt.Fprintf(b, "| %s | $%.2f | $%.2f | $%.2f | $%.2f | $%.2f |\n", what, x.APIGateway, x.Lambda, x.DynamoDB, extra, x.total()+extra)
	}
	row("million heartbeats", c.Heartbeat, 1e6, 0)
	row("million acquisitions", c.Acquisition, 1e6, 0)
	row("million viewing hours (a start, 120 heartbeats, a stop and 60 sweeps an hour)", c.ViewingHour, 1e6, 0)
	m := memberMonth
	mm := c.MemberMonth
	fmt.Fprintf(b, "| member-month, in thousandths of a dollar | %.3f | %.3f | %.3f (+%.3f storage) | %.4f | %.3f |\n\n",
		mm.APIGateway*1000, mm.Lambda*1000, mm.DynamoDB*1000, c.Storage*1000, c.Jobs*1000, (mm.total()+c.Storage+c.Jobs)*1000)
	fmt.Fprintf(b, "The member-month: %.0f viewing hours in %.0f views, %.0f acquisitions and %.0f other licence calls, %.0f reads "+
		"(rows, resume points, history pages), %.0f KB stored (a year of logs, history entries, rows, resume points), and a fleet "+
		"what-if a month (Step Functions and the job's Lambda and reads, as projected above).\n\n",
		m.ViewingHours, m.Views, m.Acquisitions, m.OtherLicenceCalls, m.Reads, m.StoredKB)
}

// viewingHourCost is the headline: dollars per million viewing hours.
func (r Report) viewingHourCost() (float64, float64, bool) {
	c, ok := r.costs()
	if !ok {
		return 0, 0, false
	}
	return c.ViewingHour.times(1e6).total(), c.HeartbeatWCU, true
}
