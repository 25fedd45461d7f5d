package changestream

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/infra/projector"
)

// Invoke hands a batch to the stream function through the Lambda JSON path
// and reads its answer as Lambda does with ReportBatchItemFailures: it
// returns the index of the record to retry from (len(recs) when the batch
// succeeded) and, when it did not, why.
//
// The whole batch failed (retry from 0) when the function returned an
// error or an unreadable answer, or named a record that is not in the
// batch; otherwise the retry starts at the failed record with the lowest
// sequence number, and every record before it counts as handled.
//
// h must not be invoked concurrently with this call: lambda.NewHandler's
// answer bytes belong to a pooled buffer the next invocation reuses.
func Invoke(ctx context.Context, h lambda.Handler, recs []events.DynamoDBEventRecord) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	payload, err := json.Marshal(events.DynamoDBEvent{Records: recs})
	if err != nil {
		return 0, fmt.Errorf("marshal event: %w", err)
	}
	out, err := h.Invoke(ctx, payload)
	if err != nil {
		return 0, fmt.Errorf("function error: %w", err)
	}
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return 0, fmt.Errorf("function answer: %w", err)
	}
	if len(resp.BatchItemFailures) == 0 {
		return len(recs), nil
	}
	index := make(map[string]int, len(recs))
	for i, r := range recs {
		index[r.Change.SequenceNumber] = i
	}
	first := -1
	var ids []string
	for _, f := range resp.BatchItemFailures {
		i, ok := index[f.ItemIdentifier]
		if !ok {
			return 0, fmt.Errorf("function named %q, which is not in the batch", f.ItemIdentifier)
		}
		if first < 0 || projector.CompareSeq(recs[i].Change.SequenceNumber, recs[first].Change.SequenceNumber) < 0 {
			first = i
		}
		ids = append(ids, f.ItemIdentifier)
	}
	return first, fmt.Errorf("batch item failures %s", strings.Join(ids, ","))
}
