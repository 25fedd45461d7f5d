// Package benchreport runs everything the benchmarks measure — the domain
// benchmarks, the DynamoDB Local benchmarks, the load generator against the
// local API on DynamoDB Local, the Lambda bootstrap sizes and the handler
// start-up time — and renders one markdown report of the figures.
package benchreport

import (
	"bufio"
	"strconv"
	"strings"
)

// Result is one benchmark line of `go test -bench` output.
type Result struct {
	// Name is the benchmark's name without the GOMAXPROCS suffix
	// ("BenchmarkAcquire").
	Name string
	// Iterations is b.N.
	Iterations int64
	// Metrics are the line's figures in order: ns/op, custom metrics
	// ("RCU/acquire@10", "records/s"…), B/op and allocs/op.
	Metrics []Metric
	// Line is the line as printed.
	Line string
}

// Metric is one figure of a benchmark line.
type Metric struct {
	Value float64
	Unit  string
}

// Get returns the value of the metric with the given unit and whether the
// line has it.
func (r Result) Get(unit string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// Parse reads the benchmark lines out of `go test -bench` output and
// ignores everything else (headers, PASS, logs).
func Parse(output string) []Result {
	var out []Result
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if r, ok := parseLine(sc.Text()); ok {
			out = append(out, r)
		}
	}
	return out
}

func parseLine(line string) (Result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return Result{}, false
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return Result{}, false
	}
	name := f[0]
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	r := Result{Name: name, Iterations: n, Line: strings.TrimSpace(line)}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Result{}, false
		}
		r.Metrics = append(r.Metrics, Metric{Value: v, Unit: f[i+1]})
	}
	return r, true
}
