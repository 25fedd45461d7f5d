package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// MetricsNamespace is the CloudWatch namespace of the API's metrics.
const MetricsNamespace = "DLicense"

// outcome is what one request did, filled in by the handlers and read by
// the observer once the request is answered.
type outcome struct {
	mu        sync.Mutex
	member    string
	granted   int
	denials   []string
	conflicts int
	// degraded counts answers given without the store (degraded.go).
	degraded int
}

type outcomeKey struct{}

func outcomeOf(ctx context.Context) *outcome {
	o, _ := ctx.Value(outcomeKey{}).(*outcome)
	return o
}

func (o *outcome) setMember(m string) {
	if o != nil {
		o.mu.Lock()
		o.member = m
		o.mu.Unlock()
	}
}

func (o *outcome) grant() {
	if o != nil {
		o.mu.Lock()
		o.granted++
		o.mu.Unlock()
	}
}

func (o *outcome) deny(codes []string) {
	if o != nil {
		o.mu.Lock()
		o.denials = append(o.denials, codes...)
		o.mu.Unlock()
	}
}

// CountConflict records a lost append race on the request in ctx; wire it to
// licensing.Service's Observer.Conflict.
func CountConflict(ctx context.Context, _ string, _ int) {
	if o := outcomeOf(ctx); o != nil {
		o.mu.Lock()
		o.conflicts++
		o.mu.Unlock()
	}
}

// MemberHash is the pseudonymous member id logs carry (kernel.Pseudonym).
func MemberHash(member string) string { return kernel.Pseudonym(member) }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// observe logs one line per request (route, status, latency, hashed member)
// and writes CloudWatch Embedded Metric Format lines to metrics: latency per
// route, grants, denials by code and conflicts retried.
func observe(next http.Handler, log *slog.Logger, metrics io.Writer) http.Handler {
	var mu sync.Mutex // EMF lines must not interleave
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		o := &outcome{}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), outcomeKey{}, o))
		next.ServeHTTP(sw, r)
		elapsed := time.Since(start)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("route", route), slog.Int("status", sw.status),
			slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
			slog.String("member", MemberHash(o.member)),
			slog.Int("conflicts", o.conflicts), slog.Bool("degraded", o.degraded > 0))
		if metrics == nil {
			return
		}
		lines := [][]byte{emf(start, []string{"Route"}, map[string]any{"Route": route},
			metric{"Latency", "Milliseconds", float64(elapsed.Microseconds()) / 1000},
			metric{"Grants", "Count", float64(o.granted)},
			metric{"ConflictsRetried", "Count", float64(o.conflicts)},
			metric{"Degraded", "Count", float64(o.degraded)})}
		for _, code := range o.denials {
			lines = append(lines, emf(start, []string{"Code"}, map[string]any{"Code": code}, metric{"Denials", "Count", 1}))
		}
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			metrics.Write(l)
		}
	})
}

type metric struct {
	name, unit string
	value      float64
}

// emf renders one Embedded Metric Format line.
func emf(at time.Time, dims []string, dimValues map[string]any, ms ...metric) []byte {
	defs := make([]map[string]string, len(ms))
	doc := map[string]any{}
	for k, v := range dimValues {
		doc[k] = v
	}
	for i, m := range ms {
		defs[i] = map[string]string{"Name": m.name, "Unit": m.unit}
		doc[m.name] = m.value
	}
	doc["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace": MetricsNamespace, "Dimensions": [][]string{dims}, "Metrics": defs,
		}},
	}
	b, _ := json.Marshal(doc)
	return append(b, '\n')
}
