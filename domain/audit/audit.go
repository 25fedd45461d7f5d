// Package audit is the trail of what operators did, and of the erasures
// members asked for: one record per call, kept for a retention period,
// readable by the operator who acted.
package audit

import (
	"context"
	"time"
)

// Record is one audited call.
type Record struct {
	At time.Time `json:"at"`
	// Actor is the token's subject; Client its app client (client_id).
	Actor  string `json:"actor"`
	Client string `json:"client_id,omitempty"`
	// Route is the route called ("METHOD /path" pattern) and what it named.
	Route  string `json:"route"`
	Member string `json:"member,omitempty"`
	Title  string `json:"title,omitempty"`
	Studio string `json:"studio,omitempty"`
	Job    string `json:"job,omitempty"`
	// Status is the answer's HTTP status; RequestID API Gateway's.
	Status    int    `json:"status"`
	RequestID string `json:"request_id,omitempty"`
}

// Store keeps the trail.
type Store interface {
	// RecordAudit keeps r until r.At + retention.
	RecordAudit(ctx context.Context, r Record, retention time.Duration) error
	// Audit returns the latest records of actor, newest first, at most limit.
	Audit(ctx context.Context, actor string, limit int) ([]Record, error)
}

// DefaultRetention is how long records are kept by default: 400 days, a
// year and the month after it.
const DefaultRetention = 400 * 24 * time.Hour
