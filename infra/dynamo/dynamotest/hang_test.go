package dynamotest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
)

// TestHangResumeAndRestartKeepTheData: a server of the test's own hangs
// (its port still takes connections, nothing answers: a call gives up on
// its deadline), answers again once resumed, and, started again on its data
// directory, comes back on the same endpoint with its tables and items.
func TestHangResumeAndRestartKeepTheData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM, twice")
	}
	srv := StartFor(t, Options{DataDir: t.TempDir()})
	db, table := TableOn(t, srv.Endpoint())
	log := dynamo.OneTable(db, table).Log
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	e := licensing.Event{Version: 1, At: at, Payload: &licensing.LicenceReleased{Licence: "L1", Reason: licensing.ReasonDeleted}}
	if err := log.Append(ctx, "m1", 0, []licensing.Event{e}); err != nil {
		t.Fatal(err)
	}
	load := func(log *dynamo.Log, within time.Duration) (licensing.Stream, error) {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		return log.Load(ctx, "m1", licensing.LoadOptions{Consistent: true})
	}

	if err := srv.Hang(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err := load(log, time.Second)
	t.Logf("a load from the hung server gave up after %v: %v", time.Since(began).Round(time.Millisecond), err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Load from a hung server = %v, want the deadline exceeded", err)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if str, err := load(log, 30*time.Second); err != nil || len(str.Events) != 1 {
		t.Fatalf("Load once resumed = %d events, %v; want the one appended", len(str.Events), err)
	}

	again, err := srv.Restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Stop() })
	if again.Endpoint() != srv.Endpoint() || again.PID() == srv.PID() {
		t.Errorf("Restart = %s (pid %d), want a new process on %s", again.Endpoint(), again.PID(), srv.Endpoint())
	}
	db2, err := dynamo.NewClient(ctx, dynamo.Config{Endpoint: again.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	str, err := load(dynamo.OneTable(db2, table).Log, 30*time.Second)
	if err != nil || len(str.Events) != 1 || !str.Events[0].At.Equal(at) {
		t.Errorf("Load after the restart = %+v, %v; want the event kept on disk", str.Events, err)
	}
}
