package httpapi

import (
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

// statuses maps an error kind to its HTTP status: the one place this is
// decided. A kind missing here (internal) is a 500.
var statuses = map[kernel.Kind]int{
	kernel.KindInvalid:      http.StatusBadRequest,
	kernel.KindNotFound:     http.StatusNotFound,
	kernel.KindConflict:     http.StatusConflict,
	kernel.KindDenied:       http.StatusForbidden,
	kernel.KindUnauthorized: http.StatusUnauthorized,
	kernel.KindForbidden:    http.StatusForbidden,
	kernel.KindUnavailable:  http.StatusServiceUnavailable,
}

func statusOf(k kernel.Kind) int {
	if s, ok := statuses[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeError answers with the problem document for err. Internal errors are
// logged and answered without their text.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind := kernel.KindOf(err)
	p := Problem{Status: statusOf(kind), Code: string(kind)}
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
	if c, ok := answerCodes[p.Code]; ok {
		p.Status = c.Status
	} else {
		slog.ErrorContext(r.Context(), "problem code outside the catalogue", "route", r.Pattern, "code", p.Code, "error", err)
		p = Problem{Status: http.StatusInternalServerError, Code: "INTERNAL", Title: "Something went wrong on our side"}
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Type = "urn:dlicense:problem:" + p.Code
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
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
