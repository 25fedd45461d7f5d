package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/memstore"
)

// The licensing service running on the in-memory store: a grant, a refusal,
// and what each cost in store calls.
func Example() {
	store := memstore.New()
	clock := fixedClock(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC))
	svc := licensing.NewService(store, licensing.DefaultPolicy(), clock, &counterIDs{})
	ctx := context.Background()

	res, err := svc.Execute(ctx, licensing.Acquire{Member: "m-1", Plan: "basic", Device: "phone", Title: "tt-lighthouse"}, "req-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	l := res.Licences[0]
	fmt.Println(res.Version, l.ID, l.Status, l.Device, l.ExpiresAt.Format(time.RFC3339))

	// The basic plan keeps downloads on one device.
	_, err = svc.Execute(ctx, licensing.Acquire{Member: "m-1", Plan: "basic", Device: "tablet", Title: "tt-lighthouse"}, "")
	var d *licensing.Denial
	if errors.As(err, &d) {
		fmt.Println(d.Codes())
	}
	fmt.Printf("%+v\n", store.Stats())
	// Output:
	// 1 lic-2 ACTIVE phone 2026-12-02T10:00:00Z
	// [DEVICE_COUNT_LIMIT]
	// {Loads:2 Appends:1 Conflicts:0 Snapshots:0}
}
