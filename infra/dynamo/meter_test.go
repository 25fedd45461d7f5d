package dynamo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
)

// TestTheMeterBillsALostWrite: an append that loses its race is refused by
// its condition, and DynamoDB bills it all the same (a write unit per KB
// of the larger of the items), without saying so in the response: the
// meter counts it, and counts it lost; a winning append counts what
// DynamoDB reports.
func TestTheMeterBillsALostWrite(t *testing.T) {
	db, table := localTable(t)
	store := dynamo.OneTable(db, table).Log
	ev := func(lic string) []licensing.Event {
		return []licensing.Event{{Version: 1, At: t0, PolicyVersion: "p", RequestID: "r-" + lic,
			Payload: &licensing.LicenceAcquired{Licence: lic, Plan: "p", Title: "t", Studio: "s", Device: "d", ExpiresAt: t0}}}
	}
	var won, lost dynamo.Meter
	if err := store.Append(dynamo.WithMeter(context.Background(), &won), "m-meter", 0, ev("l1")); err != nil {
		t.Fatal(err)
	}
	err := store.Append(dynamo.WithMeter(context.Background(), &lost), "m-meter", 0, ev("l2"))
	if !errors.Is(err, licensing.ErrConflict) {
		t.Fatalf("the second append at v0 = %v, want a conflict", err)
	}
	if u := won.Usage(); u.RoundTrips != 1 || u.WriteUnits != 1 || u.LostWrites != 0 {
		t.Errorf("the winning append = %+v, want 1 request, 1 write unit, nothing lost", u)
	}
	if u := lost.Usage(); u.WriteUnits != 1 || u.LostWrites != 1 || u.RoundTrips < 1 {
		t.Errorf("the losing append = %+v, want 1 write unit billed and 1 lost write", u)
	}
}

// TestItemSizeCountsAsDynamoDBDoes: names and values, numbers by digits,
// a write unit per KB begun.
func TestItemSizeCountsAsDynamoDBDoes(t *testing.T) {
	item := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "m#abc"},                                                           // 2 + 5
		"v":  &types.AttributeValueMemberN{Value: "12345"},                                                           // 1 + 4
		"ok": &types.AttributeValueMemberBOOL{Value: true},                                                           // 2 + 1
		"l":  &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "ab"}}}, // 1 + 3 + 1 + 2
	}
	if got := dynamo.ItemSize(item); got != 7+5+3+7 {
		t.Errorf("ItemSize = %d, want 22", got)
	}
}
