package benchreport

import (
	"math"
	"strings"
	"testing"
)

// TestCostModel: a heartbeat of one API write and one stream write, both
// billed one write unit, costs an API Gateway request, two write units and
// the Lambdas' time; a viewing hour is 120 of them with a start and a stop;
// the section and the headline say so.
func TestCostModel(t *testing.T) {
	viewing := Result{Name: "BenchmarkViewing", Metrics: []Metric{
		{1, "requests/heartbeat"}, {0, "RCU/heartbeat"}, {1, "WCU/heartbeat"},
		{1, "stream-WCU/heartbeat-paced"}, {0, "stream-RCU/heartbeat-paced"},
		{2, "requests/start"}, {1, "RCU/start"}, {1, "WCU/start"}, {1, "requests/stop"}, {1, "WCU/stop"},
		{3, "stream-WCU/start-or-stop-paced"}, {1, "requests/resume"}, {0.5, "RCU/resume"},
	}}
	realistic := Result{Name: "BenchmarkRealisticLoad", Metrics: []Metric{
		{1, "requests-mean/acquire"}, {0.1, "RCU-mean/acquire"}, {1, "WCU-mean/acquire"}, {0.4, "stream-WCU/event"},
	}}
	r := Report{Viewing: &Bench{Results: []Result{viewing}}, Realistic: &Bench{Results: []Result{realistic}}}
	c, ok := r.costs()
	if !ok {
		t.Fatal("no costs from the two benchmarks")
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %g, want %g", what, got, want)
		}
	}
	near("heartbeat write units all-in", c.HeartbeatWCU, 2)
	near("a heartbeat's API Gateway", c.Heartbeat.APIGateway, 1.00/1e6)
	near("a heartbeat's DynamoDB", c.Heartbeat.DynamoDB, 2*0.625/1e6)
	// The API's Lambda: 5 ms of DynamoDB and 1 ms of work at 256 MB, and a
	// request; the stream function's: 5 ms and 1 ms, a tenth of a request.
	lambda := 2*0.006*0.25*0.0000133334 + 0.20/1e6 + 0.1*0.20/1e6
	near("a heartbeat's Lambda", c.Heartbeat.Lambda, lambda)
	near("a viewing hour", c.ViewingHour.total(), 120*c.Heartbeat.total()+c.Start.total()+c.Stop.total())
	var b strings.Builder
	r.costSection(&b)
	if !strings.Contains(b.String(), "| million heartbeats | $1.00 |") || !strings.Contains(b.String(), "2.00 write units all-in") {
		t.Errorf("cost section:\n%s", b.String())
	}
	if _, wcu, ok := r.viewingHourCost(); !ok || wcu != 2 {
		t.Errorf("headline = %v, %v", wcu, ok)
	}
}
