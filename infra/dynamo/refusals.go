package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// Refusals is the latest refusals of each member's acquisitions and
// renewals, kept for operators (the timeline, what-if): in the member's log
// partition, under x# (loads read only e#), expiring with the table's TTL.
type Refusals struct {
	t *Table
}

// NewRefusals returns the refusals kept in t.
func NewRefusals(t *Table) *Refusals { return &Refusals{t: t} }

var _ licensing.RefusalStore = (*Refusals)(nil)

const kindRefusal = "refusal"

// RecordRefusal implements licensing.RefusalStore: one plain PutItem in the
// member's partition, under x# (loads read only e#), expiring with the
// table's TTL attribute after licensing.RefusalRetention.
func (s *Refusals) RecordRefusal(ctx context.Context, member string, r licensing.Refusal) error {
	d, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var tail [4]byte
	rand.Read(tail[:])
	item := key(LogPartition(member), fmt.Sprintf("x#%013d#%x", ms(r.At), tail))
	item["it"], item["d"], item["ttl"] = str(kindRefusal), str(string(d)), num(r.At.Add(licensing.RefusalRetention).Unix())
	if err := s.t.put(ctx, item, "", nil, nil, false); err != nil {
		return fmt.Errorf("keep a refusal: %w", unavailable(err))
	}
	return nil
}

// Refusals implements licensing.RefusalStore: one Query, newest first.
func (s *Refusals) Refusals(ctx context.Context, member string, limit int) ([]licensing.Refusal, error) {
	out, err := s.t.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.t.name, KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :x)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(LogPartition(member)), ":x": str("x#")},
		ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(int32(limit)),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, true)
		return nil, fmt.Errorf("query refusals: %w", unavailable(err))
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	rs := []licensing.Refusal{}
	for _, item := range out.Items {
		d, _ := item["d"].(*types.AttributeValueMemberS)
		if d == nil {
			continue
		}
		var r licensing.Refusal
		if err := json.Unmarshal([]byte(d.Value), &r); err != nil {
			return nil, fmt.Errorf("refusal of %s: %w", kernel.Pseudonym(member), err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}
