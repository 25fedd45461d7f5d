package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/audit"
)

// Audit is the audit trail: one item per record in its actor's partition
// ("a#<actor>", sort key "a#<Unix ms>#<random>"), expiring with the table's
// TTL attribute after the retention.
type Audit struct{ t *Table }

// NewAudit returns the audit trail kept in t.
func NewAudit(t *Table) *Audit { return &Audit{t: t} }

var _ audit.Store = (*Audit)(nil)

const kindAudit = "audit"

func auditPartition(actor string) string { return "a#" + actor }

// RecordAudit implements audit.Store: one plain PutItem.
func (s *Audit) RecordAudit(ctx context.Context, r audit.Record, retention time.Duration) error {
	d, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var tail [4]byte
	rand.Read(tail[:])
	item := key(auditPartition(r.Actor), fmt.Sprintf("a#%013d#%x", ms(r.At), tail))
	item["it"], item["d"], item["ttl"] = str(kindAudit), str(string(d)), num(r.At.Add(retention).Unix())
	if err := s.t.put(ctx, item, "", nil, nil, false); err != nil {
		return fmt.Errorf("keep an audit record: %w", unavailable(err))
	}
	return nil
}

// Audit implements audit.Store: one Query, newest first.
func (s *Audit) Audit(ctx context.Context, actor string, limit int) ([]audit.Record, error) {
	out, err := s.t.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.t.name, KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :a)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(auditPartition(actor)), ":a": str("a#")},
		ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(int32(limit)),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, true)
		return nil, fmt.Errorf("query the audit trail: %w", unavailable(err))
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	rs := []audit.Record{}
	for _, item := range out.Items {
		d, _ := item["d"].(*types.AttributeValueMemberS)
		if d == nil {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(d.Value), &r); err != nil {
			return nil, fmt.Errorf("audit record: %w", err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}
