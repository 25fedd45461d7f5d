package changestream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/infra/dynamo"
)

// Redriving is function, the stream function, as the Lambda runs it:
// Handler over function, with a redriver reading the stream of the table
// c names. A redrive tries a failing batch twice, then leaves the message
// to the queue, which offers it again after its visibility timeout.
func Redriving(ctx context.Context, c dynamo.Config, function lambda.Handler) (lambda.Handler, error) {
	streams, err := NewClient(ctx, c)
	if err != nil {
		return nil, err
	}
	filter, err := ParseFilters(EventFilters...)
	if err != nil {
		return nil, err
	}
	return Handler(function, &Redriver{Streams: streams, Handler: function, Filter: filter, Retries: 1}), nil
}

// Handler is the stream function as the Lambda runs it: a batch of the
// table's stream goes to function; a batch of the dead-letter queue (the
// descriptions of stream batches Lambda gave up on, delivered by the
// queue's event source mapping) is redriven through r, which reads the
// records back from the stream and hands them to the same function. A
// message whose redrive fails is reported alone (ReportBatchItemFailures):
// SQS offers it again after the queue's visibility timeout, so read models
// heal once the store and the function are healthy again, and a message
// that keeps failing moves to the queue's own dead-letter queue, where an
// alarm calls an operator.
func Handler(function lambda.Handler, r *Redriver) lambda.Handler {
	return handler{function, r}
}

type handler struct {
	function lambda.Handler
	redriver *Redriver
}

func (h handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var peek struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(payload, &peek); err != nil || len(peek.Records) == 0 || peek.Records[0].EventSource != "aws:sqs" {
		return h.function.Invoke(ctx, payload)
	}
	var batch events.SQSEvent
	if err := json.Unmarshal(payload, &batch); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var resp events.SQSEventResponse
	for _, m := range batch.Records {
		if err := h.redrive(ctx, m); err != nil {
			slog.ErrorContext(ctx, "redrive failed; the queue offers it again", "message", m.MessageId, "receives", m.Attributes["ApproximateReceiveCount"], "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return json.Marshal(resp)
}

func (h handler) redrive(ctx context.Context, m events.SQSMessage) error {
	msg, err := ParseDeadLetter([]byte(m.Body))
	if err != nil {
		return err
	}
	rep, err := h.redriver.Redrive(ctx, msg, nil)
	if err != nil {
		return err
	}
	bi := msg.Batch
	slog.InfoContext(ctx, "redriven", "message", m.MessageId, "shard", bi.ShardID, "from", bi.StartSequenceNumber, "to", bi.EndSequenceNumber, "read", rep.Read, "delivered", rep.Delivered)
	return nil
}
