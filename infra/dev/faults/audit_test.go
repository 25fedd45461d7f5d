package faults_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
)

// audit is what the logs say about a run, checked against what the devices
// were told.
type audit struct {
	events, granted, released int
	// duplicates are licences granted twice for one device and title, and
	// keys whose events more than one service call appended.
	duplicates []string
	// lost are answers the log does not back: a success whose events are
	// missing, or a version that does not follow the one before.
	lost []string
	// gaveUp counts requests the device stopped retrying, and landed those
	// of them the log holds anyway.
	gaveUp, landed int
}

func (a *audit) add(b audit) {
	a.events += b.events
	a.granted += b.granted
	a.released += b.released
	a.duplicates = append(a.duplicates, b.duplicates...)
	a.lost = append(a.lost, b.lost...)
	a.gaveUp += b.gaveUp
	a.landed += b.landed
}

// auditMember reads a member's whole log (consistently, without snapshot)
// and checks it against the outcomes of the member's requests.
func auditMember(t *testing.T, store *dynamo.Log, member string, outcomes []outcome) audit {
	t.Helper()
	str, err := store.Load(context.Background(), member, licensing.LoadOptions{Consistent: true})
	if err != nil {
		t.Fatalf("Load(%s) = %v", member, err)
	}
	if str.Snapshot != nil {
		t.Fatalf("Load(%s) without a snapshot schema returned a snapshot", member)
	}
	var a audit
	a.events = len(str.Events)
	type held struct{ device, title string }
	active := map[held]string{}  // licence holding each device and title
	holding := map[string]held{} // the same, by licence
	byKey := map[string][]licensing.Event{}
	calls := map[string]map[string]bool{} // key → request ids that appended under it
	for i, e := range str.Events {
		if e.Version != int64(i+1) {
			a.lost = append(a.lost, fmt.Sprintf("%s: event %d has version %d", member, i+1, e.Version))
		}
		if e.Key != "" {
			byKey[e.Key] = append(byKey[e.Key], e)
			if calls[e.Key] == nil {
				calls[e.Key] = map[string]bool{}
			}
			calls[e.Key][e.RequestID] = true
		}
		switch p := e.Payload.(type) {
		case *licensing.LicenceAcquired:
			a.granted++
			h := held{p.Device, p.Title}
			if other, ok := active[h]; ok {
				a.duplicates = append(a.duplicates, fmt.Sprintf("%s: %s and %s both hold %s on %s", member, other, p.Licence, p.Title, p.Device))
			}
			active[h], holding[p.Licence] = p.Licence, h
		case *licensing.LicenceReleased:
			a.released++
			if h, ok := holding[p.Licence]; ok && active[h] == p.Licence {
				delete(active, h)
			}
		}
	}
	for key, ids := range calls {
		if len(ids) > 1 {
			a.duplicates = append(a.duplicates, fmt.Sprintf("%s: key %s appended by %d service calls", member, key, len(ids)))
		}
	}
	for _, o := range outcomes {
		events := byKey[o.key]
		if o.err != nil {
			a.gaveUp++
			if len(events) > 0 {
				a.landed++
			}
			continue
		}
		if n := o.res.Version; n < 1 || n > int64(len(str.Events)) || str.Events[n-1].Key != o.key {
			a.lost = append(a.lost, fmt.Sprintf("%s: %s answered v%d, which the log does not hold under its key", member, o.key, n))
			continue
		}
		want := ""
		switch c := o.cmd.(type) {
		case licensing.Acquire:
			if len(o.res.Licences) > 0 {
				want = o.res.Licences[0].ID
			}
		case licensing.Release:
			want = c.Licence
		}
		found := false
		for _, e := range events {
			switch p := e.Payload.(type) {
			case *licensing.LicenceAcquired:
				found = found || p.Licence == want
			case *licensing.LicenceReleased:
				found = found || p.Licence == want
			}
		}
		if !found {
			a.lost = append(a.lost, fmt.Sprintf("%s: %s answered licence %q, which the log does not hold under its key", member, o.key, want))
		}
	}
	return a
}
