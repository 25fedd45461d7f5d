package benchreport

import (
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/dev/loadgen"
)

const output = `goos: linux
goarch: amd64
pkg: github.com/dlicense/dlicense/infra/dynamo
cpu: AMD EPYC
BenchmarkDecideAcquireTypical-2   	  491343	      5654 ns/op	    1408 B/op	       4 allocs/op
BenchmarkFold10000Events-2        	     242	  14514085 ns/op	     52650 playback-entries	 1216720 B/op	     796 allocs/op
BenchmarkAcquire-2   	     300	  38969178 ns/op	         0.5000 RCU/acquire@10	         0.5033 RCU/acquire@10000	         1.000 WCU/acquire@10	         1.000 WCU/acquire@10000	         1.020 latency-ratio	      5741 p50-µs@10	      5855 p50-µs@10000	         2.000 roundtrips/acquire@10	         2.000 roundtrips/acquire@10000
BenchmarkStreamFunction	       3	8046170694 ns/op	         0.6333 RCU/event	         1.533 WCU/event	       215.9 records/s
--- SKIP: BenchmarkOther
    bench_test.go:12: DYNAMODB_ENDPOINT is not set; skipping DynamoDB test
BenchmarkBroken-2 12 ns/op
PASS
ok  	github.com/dlicense/dlicense/infra/dynamo	26.612s
`

func TestParse(t *testing.T) {
	rs := Parse(output)
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, " "), "BenchmarkDecideAcquireTypical BenchmarkFold10000Events BenchmarkAcquire BenchmarkStreamFunction"; got != want {
		t.Fatalf("Parse names = %s, want %s", got, want)
	}
	for _, c := range []struct {
		bench int
		unit  string
		want  float64
	}{
		{0, "ns/op", 5654}, {0, "allocs/op", 4}, {1, "playback-entries", 52650},
		{2, "RCU/acquire@10000", 0.5033}, {2, "p50-µs@10", 5741}, {2, "latency-ratio", 1.02}, {3, "records/s", 215.9},
	} {
		if got, ok := rs[c.bench].Get(c.unit); !ok || got != c.want {
			t.Errorf("%s.Get(%q) = %v, %v, want %v", rs[c.bench].Name, c.unit, got, ok, c.want)
		}
	}
	if rs[2].Iterations != 300 || len(rs[2].Metrics) != 10 {
		t.Errorf("BenchmarkAcquire = %d iterations, %d metrics, want 300, 10", rs[2].Iterations, len(rs[2].Metrics))
	}
	if got := skipReason(output); got != "DYNAMODB_ENDPOINT is not set; skipping DynamoDB test" {
		t.Errorf("skipReason = %q", got)
	}
}

func TestValue(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{5654, "ns/op", "5.7 µs"}, {14514085, "ns/op", "14.51 ms"}, {812, "ns/op", "812 ns"}, {8046170694, "ns/op", "8.05 s"},
		{5741, "p50-µs", "5.74 ms"}, {1216720, "B/op", "1.2 MB"}, {52650, "playback-entries", "52,650"},
		{0.5033, "RCU/acquire", "0.50"}, {1, "WCU/acquire", "1.00"}, {215.9, "records/s", "216"},
	} {
		if got := value(c.v, c.unit); got != c.want {
			t.Errorf("value(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 90 * time.Second: "1m30s", 30 * time.Second: "30s", 2 * time.Hour: "2h"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestMarkdown(t *testing.T) {
	rs := Parse(output)
	r := Report{
		Machine: Machine{Date: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), GoVersion: "go1.26.8 linux/amd64", CPU: "AMD EPYC", Cores: 2, OS: "linux/amd64"},
		Domain:  &Bench{Command: "go test -bench . ./domain/...", Results: rs[:2]},
		Acquire: &Bench{Command: "withdynamodb -- go test ./infra/dynamo/", Results: rs[2:3]},
		Streams: &Bench{Command: "withdynamodb -- go test ./infra/projector/", Skipped: "DYNAMODB_ENDPOINT is not set"},
		Load: &Load{Options: LoadOptions{Levels: []int{1, 4}, Members: 50, Requests: 100, Duration: time.Minute}, Levels: []LoadLevel{
			{Concurrency: 1, Summary: loadgen.Summary{Requests: 100, Throughput: 90, Status: map[int]int{200: 60, 201: 40},
				AcquireLatency: loadgen.Percentiles{P50: 7 * time.Millisecond, P90: 9 * time.Millisecond, P99: 20 * time.Millisecond}}},
		}},
		Sizes:   []Size{{"ApiFunction", 11731106}},
		Startup: []Startup{{What: "API: DynamoDB store", Runs: 3, First: time.Millisecond, Median: 500 * time.Microsecond, Max: time.Millisecond}},
		Took:    4 * time.Minute,
	}
	md := r.Markdown()
	for _, want := range []string{
		"| machine | AMD EPYC, 2 cores (linux/amd64) |",
		"| DecideAcquireTypical | acquire decision, typical member (20 active licences) | 5.7 µs | — | 1.4 KB, 4 allocs | ≤ 5 µs (not met) |",
		"| Fold10000Events | fold of 10,000 events | 14.51 ms | 52,650 playback entries |",
		"| figure | @10 | @10000 | target |",
		"| read units per acquire | 0.50 | 0.50 | ≤ 0.5 (met) |",
		"| p50 latency ratio, 10,000 / 10 events | 1.02 | ≤ 1.1 (met) |",
		"## DynamoDB Local: stream function",
		"Not run: DYNAMODB_ENDPOINT is not set.",
		"50 members, at most 100 requests or 1m per level",
		"| 1 | 100 | 90 req/s |",
		"| 7.00 ms | 20.00 ms | 200×60, 201×40 | 0 |",
		"| ApiFunction | 11.731 MB (11,731,106 bytes) | ≤ 250 MB, Lambda's limit unzipped (met) |",
		"| API handler initialisation (median) | 500.0 µs | — |",
		"BenchmarkAcquire-2   \t     300",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown() lacks %q:\n%s", want, md)
		}
	}
}
