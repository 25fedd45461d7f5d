package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// Problem is an RFC 9457 problem document with a stable code.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
	// Field names the input at fault, for invalid requests.
	Field string `json:"field,omitempty"`
	// Rules lists every rule that refused a command, for denials.
	Rules []licensing.RuleFailure `json:"rules,omitempty"`
	// Limit and Screens describe a start refused over the screens limit:
	// the plan's limit and every screen in use.
	Limit   int              `json:"limit,omitempty"`
	Screens []viewing.Screen `json:"screens,omitempty"`
	// Reason says why a view ended, for VIEW_ENDED.
	Reason viewing.EndReason `json:"reason,omitempty"`
}

// writeError answers with the problem document for err: its code, and the
// status the catalogue (Codes) gives that code. Internal errors are logged
// and answered without their text.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	if kernel.KindOf(err) == kernel.KindInternal && errors.Is(err, context.DeadlineExceeded) {
		// The request's budget ran out in a call that did not classify it.
		err = kernel.Unavailable("the store did not answer in time; retry shortly", err)
	}
	kind := kernel.KindOf(err)
	var p Problem
	var d *licensing.Denial
	var e *kernel.Error
	switch {
	case errors.As(err, &d):
		outcomeOf(r.Context()).deny(d.Codes())
		p.Code, p.Title, p.Rules = "DENIED", "The licence was refused", d.Rules
		p.Detail = d.Error()
	case errors.As(err, &e) && kind != kernel.KindInternal:
		p.Code, p.Title, p.Detail, p.Field = e.Code, e.Message, e.Message, e.Field
		if kind == kernel.KindUnavailable {
			slog.WarnContext(r.Context(), "request failed, retryable", "route", r.Pattern, "code", e.Code, "error", err)
		}
	default:
		slog.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "error", err)
		p.Code, p.Title = "INTERNAL", "Something went wrong on our side"
		if kind == kernel.KindUnavailable {
			p.Code, p.Title = "UNAVAILABLE", "The service is busy; retry shortly"
		}
	}
	var limit *viewing.LimitError
	if errors.As(err, &limit) {
		p.Limit, p.Screens = limit.Limit, limit.Screens
	}
	var ended *viewing.EndedError
	if errors.As(err, &ended) {
		p.Reason = ended.Reason
	}
	if _, ok := answerCodes[p.Code]; !ok {
		slog.ErrorContext(r.Context(), "problem code outside the catalogue", "route", r.Pattern, "code", p.Code, "error", err)
		p = Problem{Code: "INTERNAL", Title: "Something went wrong on our side"}
	}
	writeProblem(w, p)
}

// writeProblem answers with p, its status, type and (if it has none) title
// those of its code in the catalogue: the one place an answer's status is
// decided. A 503 says when to retry.
func writeProblem(w http.ResponseWriter, p Problem) {
	c, ok := answerCodes[p.Code]
	if !ok {
		p, c = Problem{Code: "INTERNAL", Title: "Something went wrong on our side"}, answerCodes["INTERNAL"]
	}
	p.Status, p.Type = c.Status, "urn:dlicense:problem:"+p.Code
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// problems answers requests that match no route (404) or no method of their
// route (405, with Allow) with a problem document instead of plain text.
func problems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusOnly{header: http.Header{}}
		h.ServeHTTP(probe, r)
		p := Problem{Code: "NOT_FOUND", Title: "No such route"}
		if probe.status == http.StatusMethodNotAllowed {
			p.Code, p.Title = "METHOD_NOT_ALLOWED", "This route does not take that method"
			w.Header().Set("Allow", probe.header.Get("Allow"))
		}
		writeProblem(w, p)
	})
}

// statusOnly keeps the status and headers the mux would have answered with.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(status int)      { s.status = status }
