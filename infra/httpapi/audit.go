package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/akrylysov/algnhsa"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/kernel"
)

// auditRoutes are the audited routes that are not operators' routes: a
// member's erasure of their own viewing data.
var auditRoutes = map[string]bool{"DELETE /v1/history": true}

// auditedRoutes are the routes the trail reads.
var auditedRoutes = []route{
	{"GET /v1/admin/audit", adminAccess, (*api).ownAudit},
}

// audited reports whether calls of rt leave a record: every operators'
// route but the trail's own, and the erasures.
func audited(rt route) bool {
	return rt.access == adminAccess && rt.pattern != "GET /v1/admin/audit" || auditRoutes[rt.pattern]
}

// auditStoreDeadline bounds the write of a record after the answer: the
// request's own budget may be spent.
const auditStoreDeadline = time.Second

// keepAudit records the call r of rt by id, which answered status: a line
// "audit" in the function's log, always, and a record in the trail (kept
// Options.AuditRetention), which operators read back; a record that could
// not be kept is logged as such, the line holding all of it.
func (a *api) keepAudit(r *http.Request, rt route, id Identity, status int) {
	rec := audit.Record{At: a.opts.Now().UTC(), Actor: id.Member, Client: id.Client, Route: rt.pattern,
		Member: r.PathValue("member"), Title: r.PathValue("title"), Studio: r.PathValue("studio"), Job: r.PathValue("job"), Status: status}
	if auditRoutes[rt.pattern] {
		rec.Member = id.Member // a member's own erasure
	}
	if ev, ok := algnhsa.APIGatewayV2RequestFromContext(r.Context()); ok {
		rec.RequestID = ev.RequestContext.RequestID
	}
	attrs := []slog.Attr{slog.String("actor", rec.Actor), slog.String("client_id", rec.Client), slog.String("route", rec.Route),
		slog.String("member", rec.Member), slog.String("title", rec.Title), slog.String("studio", rec.Studio), slog.String("job", rec.Job),
		slog.Int("status", rec.Status), slog.String("request_id", rec.RequestID)}
	a.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "audit", attrs...)
	if a.svc.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditStoreDeadline)
	defer cancel()
	if err := a.svc.Audit.RecordAudit(ctx, rec, a.opts.AuditRetention); err != nil {
		a.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "audit record not kept", append(attrs, slog.String("error", err.Error()))...)
	}
}

// ownAudit answers the caller's own latest audited calls, newest first
// (?limit=, 1 to 100, 50 by default): what the console shows an operator.
func (a *api) ownAudit(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Audit != nil, "the audit trail") {
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, r, kernel.Invalid("limit", "limit must be a whole number from 1 to 100"))
			return
		}
		limit = n
	}
	rs, err := a.svc.Audit.Audit(r.Context(), id.Member, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"actor": id.Member, "records": rs})
}
