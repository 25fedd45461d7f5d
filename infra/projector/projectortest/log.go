package projectortest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
)

// Seq is the n-th sequence number of a test stream, 21 digits wide as
// DynamoDB Local writes them.
func Seq(n int) string { return fmt.Sprintf("%021d", n) }

// Day is when Log's events happen: a minute apart from 10:00 on this day.
var Day = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// Log appends n events to member's log in s through a licensing service
// (acquisitions of tt-first-light on device d1 and releases, in turn, a
// minute apart from 10:00 on Day) and returns the INSERT records DynamoDB
// Streams delivers for every event of the log, numbered on from *seq.
func Log(t testing.TB, s licensing.EventStore, member string, n int, seq *int) []events.DynamoDBEventRecord {
	t.Helper()
	c := &minutes{}
	c.at.Store(Day.Add(10 * time.Hour).UnixNano())
	svc := licensing.NewService(s, licensing.DefaultPolicy(), c, &counted{})
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			if _, err := svc.Execute(ctx, licensing.Acquire{Member: member, Plan: "premium", Device: "d1", Title: "tt-first-light"}, ""); err != nil {
				t.Fatal(err)
			}
			continue
		}
		st, err := svc.Load(ctx, member)
		if err != nil {
			t.Fatal(err)
		}
		l := st.Licences(c.Now())
		if _, err := svc.Execute(ctx, licensing.Release{Member: member, Device: "d1", Licence: l[len(l)-1].ID, Reason: licensing.ReasonDeleted}, ""); err != nil {
			t.Fatal(err)
		}
	}
	str, err := s.Load(ctx, member, licensing.LoadOptions{Consistent: true})
	if err != nil {
		t.Fatal(err)
	}
	var recs []events.DynamoDBEventRecord
	for _, e := range str.Events {
		se, err := licensing.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		*seq++
		r, err := InsertRecord(member, se, Seq(*seq))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// SnapshotVersion is the version of member's snapshot in s (0: none).
func SnapshotVersion(t testing.TB, s licensing.EventStore, member string) int64 {
	t.Helper()
	str, err := s.Load(context.Background(), member, licensing.LoadOptions{SnapshotSchema: licensing.StateSchema, Consistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if str.Snapshot == nil {
		return 0
	}
	return str.Snapshot.Version
}

// minutes is a clock a minute later at each reading.
type minutes struct{ at atomic.Int64 }

func (c *minutes) Now() time.Time { return time.Unix(0, c.at.Add(int64(time.Minute))) }

// counted makes the ids L1, L2, …
type counted struct{ n atomic.Int64 }

func (i *counted) NewID() string { return fmt.Sprintf("L%d", i.n.Add(1)) }
