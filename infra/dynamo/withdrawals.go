package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/licensing"
)

// Withdrawals is the operators' withdrawals of titles from downloads, and
// how far the ending of each one's licences is: one partition (there are
// few), a title each.
type Withdrawals struct {
	t *Table
}

var _ licensing.WithdrawalStore = (*Withdrawals)(nil)

// NewWithdrawals returns the withdrawals kept in t.
func NewWithdrawals(t *Table) *Withdrawals { return &Withdrawals{t: t} }

const (
	withdrawalPK   = "wd"
	kindWithdrawal = "withdrawal"
)

type withdrawalItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	Kind     string `dynamodbav:"it"`
	Title    string `dynamodbav:"t"`
	From     int64  `dynamodbav:"from"`
	Recorded int64  `dynamodbav:"rec"`
	Members  int    `dynamodbav:"mem"`
	Ended    int    `dynamodbav:"ended"`
	Cursor   string `dynamodbav:"cur,omitempty"`
	Done     bool   `dynamodbav:"done"`
}

func (it withdrawalItem) withdrawal() licensing.Withdrawal {
	return licensing.Withdrawal{Title: it.Title, From: fromMs(it.From), RecordedAt: fromMs(it.Recorded), Members: it.Members, Ended: it.Ended, Cursor: it.Cursor, Done: it.Done}
}

// RecordWithdrawal implements licensing.WithdrawalStore: one PutItem on
// attribute_not_exists(sk).
func (s *Withdrawals) RecordWithdrawal(ctx context.Context, w licensing.Withdrawal) (licensing.Withdrawal, bool, error) {
	item, err := attributevalue.MarshalMap(withdrawalItem{PK: withdrawalPK, SK: "t#" + w.Title, Kind: kindWithdrawal, Title: w.Title, From: ms(w.From), Recorded: ms(w.RecordedAt)})
	if err != nil {
		return w, false, err
	}
	err = s.t.put(ctx, item, "attribute_not_exists(sk)", nil, nil, true)
	if held, failed := failedCondition(err); failed {
		var it withdrawalItem
		if err := attributevalue.UnmarshalMap(held, &it); err != nil {
			return w, false, err
		}
		return it.withdrawal(), false, nil
	}
	if err != nil {
		return w, false, fmt.Errorf("record the withdrawal of %s: %w", w.Title, unavailable(err))
	}
	return w, true, nil
}

// SaveProgress implements licensing.WithdrawalStore: one UpdateItem.
func (s *Withdrawals) SaveProgress(ctx context.Context, w licensing.Withdrawal) error {
	_, _, err := s.t.update(ctx, key(withdrawalPK, "t#"+w.Title), "SET #mem = :m, #ended = :e, #cur = :c, #done = :d", "attribute_exists(sk)",
		map[string]types.AttributeValue{":m": num(int64(w.Members)), ":e": num(int64(w.Ended)), ":c": str(w.Cursor), ":d": &types.AttributeValueMemberBOOL{Value: w.Done}}, false)
	if err != nil {
		return fmt.Errorf("save the withdrawal of %s: %w", w.Title, err)
	}
	return nil
}

// Withdrawals implements licensing.WithdrawalStore: one Query of their
// partition.
func (s *Withdrawals) Withdrawals(ctx context.Context) ([]licensing.Withdrawal, error) {
	var out []licensing.Withdrawal
	err := s.t.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(withdrawalPK)},
		ConsistentRead:            aws.Bool(true),
	}, func(item map[string]types.AttributeValue) error {
		var it withdrawalItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return err
		}
		out = append(out, it.withdrawal())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query withdrawals: %w", err)
	}
	return out, nil
}
