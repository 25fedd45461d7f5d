// Command dlicense-redrive replays the stream records of dead-letter
// messages through the stream function: the answer to the dead-letter
// alarm. A message says where a batch the function gave up on lies in the
// table's stream (shard and sequence numbers); the records stay there 24
// hours. The function is idempotent, so a redrive can be run again.
//
//	dlicense-redrive -file message.json    one message (- for standard input)
//	dlicense-redrive -queue URL            every message of the dead-letter queue,
//	                                       each deleted once its records are handled
//
// It reads TABLE_NAME, AWS_REGION, DYNAMODB_ENDPOINT, SNAPSHOT_EVERY and
// POLICY_FILE like the stream function. make run-dynamodb writes the dead
// letters of its local stream poller into .cache/dead-letters/.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/ops/awsenv"
	"github.com/dlicense/dlicense/infra/ops/progress"
	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	file := flag.String("file", "", "a dead-letter message (JSON; - for standard input)")
	queue := flag.String("queue", "", "the dead-letter queue's URL: redrive every message it holds")
	flag.Parse()
	if (*file == "") == (*queue == "") {
		fmt.Fprintln(os.Stderr, "usage: dlicense-redrive -file message.json | -queue URL")
		os.Exit(2)
	}
	if err := run(*file, *queue); err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-redrive:", err)
		os.Exit(1)
	}
}

func run(file, queue string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// The stream function as the Lambda runs it: the same wiring, the same
	// environment (TABLE_NAME, SNAPSHOT_EVERY, POLICY_FILE…).
	cfg, err := setup.FromEnv()
	if err != nil {
		return err
	}
	if cfg.Dynamo, err = awsenv.Resolve(ctx, cfg.Dynamo); err != nil {
		return err
	}
	proc, err := setup.StreamFunction(ctx, cfg)
	if err != nil {
		return err
	}
	client, err := changestream.NewClient(ctx, cfg.Dynamo)
	if err != nil {
		return err
	}
	filter, err := changestream.ParseFilters(changestream.EventFilters...)
	if err != nil {
		return err
	}
	r := &changestream.Redriver{Streams: client, Handler: lambda.NewHandler(proc.Handle), Filter: filter}

	if file != "" {
		var raw []byte
		if file == "-" {
			raw, err = io.ReadAll(os.Stdin)
		} else {
			raw, err = os.ReadFile(file)
		}
		if err != nil {
			return err
		}
		return redrive(ctx, r, raw, file)
	}
	awsCfg, err := dynamo.AWSConfig(ctx, cfg.Dynamo)
	if err != nil {
		return err
	}
	q := sqs.NewFromConfig(awsCfg)
	done := 0
	for {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
		if err != nil {
			return fmt.Errorf("receive from %s: %w", queue, err)
		}
		if len(out.Messages) == 0 {
			fmt.Printf("the queue is empty: %d messages redriven\n", done)
			return nil
		}
		for _, m := range out.Messages {
			if err := redrive(ctx, r, []byte(aws.ToString(m.Body)), aws.ToString(m.MessageId)); err != nil {
				return err
			}
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return fmt.Errorf("delete message %s: %w", aws.ToString(m.MessageId), err)
			}
			done++
		}
	}
}

// redrive replays one message's records, with a progress bar.
func redrive(ctx context.Context, r *changestream.Redriver, raw []byte, name string) error {
	msg, err := changestream.ParseDeadLetter(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	bi := msg.Batch
	bar := progress.New(int64(bi.BatchSize), "redriving "+bi.ShardID)
	rep, err := r.Redrive(ctx, msg, func(done, _ int) { bar.Set(done) })
	bar.Finish()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("%s: records %s to %s: %d read, %d handled by the stream function\n", name, bi.StartSequenceNumber, bi.EndSequenceNumber, rep.Read, rep.Delivered)
	return nil
}
