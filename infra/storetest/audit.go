package storetest

import (
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/audit"
)

// RunAudit runs the contract of audit trails: an actor's records come back
// newest first, at most the limit asked, and another actor's never.
func RunAudit(t *testing.T, newStore func(t *testing.T) audit.Store) {
	s := newStore(t)
	ctx := t.Context()
	actor, other := streamID(t)+"-ops", streamID(t)+"-other"
	for i := range 5 {
		r := audit.Record{At: vt0.Add(time.Duration(i) * time.Minute), Actor: actor, Client: "console", Route: "DELETE /v1/admin/members/{member}/viewing",
			Member: "m-" + string(rune('a'+i)), Status: 202, RequestID: "req"}
		if err := s.RecordAudit(ctx, r, time.Hour); err != nil {
			t.Fatalf("RecordAudit = %v", err)
		}
	}
	if err := s.RecordAudit(ctx, audit.Record{At: vt0, Actor: other, Route: "GET /v1/admin/policy", Status: 200}, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(ctx, actor, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Member != "m-e" || got[2].Member != "m-c" || !got[0].At.Equal(vt0.Add(4*time.Minute)) || got[0].Client != "console" || got[0].Status != 202 {
		t.Errorf("Audit(actor, 3) = %+v; want the 3 newest, newest first, as recorded", got)
	}
	if none, err := s.Audit(ctx, "nobody-"+actor, 10); err != nil || len(none) != 0 {
		t.Errorf("Audit(an actor with no record) = %v, %v; want none", none, err)
	}
}
