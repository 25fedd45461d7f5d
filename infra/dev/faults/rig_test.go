package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/faults"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
)

// t0 is the fixed time of every test: no licence expires while one runs.
var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// ids makes licence and request ids unique across a test.
type ids struct {
	prefix string
	n      atomic.Int64
}

func (i *ids) NewID() string { return fmt.Sprintf("%s%d", i.prefix, i.n.Add(1)) }

// rig is one table on DynamoDB Local, a store over it that no fault
// touches (to set up and to read the log back), and a service whose
// DynamoDB calls go through a fault-injecting transport.
type rig struct {
	clean *dynamo.Log
	tr    *faults.Transport
	svc   *licensing.Service
	// faulty is the store under the service.
	faulty *dynamo.Log
	db     *dynamodb.Client
	table  string
}

// newRig creates the table and the service. sdkAttempts is the SDK's
// attempts per call (4 in production).
func newRig(t *testing.T, policy *licensing.Policy, plan faults.Plan, seed uint64, sdkAttempts int) *rig {
	t.Helper()
	clean, name := dynamotest.Table(t)
	endpoint, _ := dynamotest.EndpointFromEnv()
	ctx := context.Background()
	tr := faults.New(nil, plan, seed)
	db, err := faults.Client(ctx, endpoint, tr, sdkAttempts)
	if err != nil {
		t.Fatal(err)
	}
	faulty := dynamo.OneTable(db, name).Log
	svc := licensing.NewService(faulty, policy, fixedClock(t0), &ids{prefix: "L" + randomHex(2) + "-"})
	return &rig{clean: dynamo.OneTable(clean, name).Log, tr: tr, svc: svc, faulty: faulty, db: db, table: name}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// deviceAttempts bounds how often a device sends one request (the first
// time and its retries with the same key).
const deviceAttempts = 8

// retryable reports whether a device retries after err, as it would after
// a 503 or a 500: the service was unavailable, or failed inside.
func retryable(err error) bool {
	k := kernel.KindOf(err)
	return k == kernel.KindUnavailable || k == kernel.KindInternal
}

// outcome is what a device made of one request.
type outcome struct {
	cmd   licensing.Command
	key   string
	res   licensing.Result
	err   error // the last error, if the device gave up
	sends int   // Execute calls, first and retries
	// retriedAfter counts the errors, by kind, the device retried after.
	retriedAfter map[kernel.Kind]int
}

// send executes cmd as a device does: with its idempotency key, retried
// with the same key after an Unavailable or Internal error, at most
// attempts times in all.
func send(ctx context.Context, svc *licensing.Service, cmd licensing.Command, key string, attempts int) outcome {
	o := outcome{cmd: cmd, key: key, retriedAfter: map[kernel.Kind]int{}}
	for {
		o.sends++
		res, err := svc.Execute(ctx, cmd, key)
		if err == nil {
			o.res, o.err = res, nil
			return o
		}
		o.err = err
		if !retryable(err) || o.sends >= attempts || ctx.Err() != nil {
			return o
		}
		o.retriedAfter[kernel.KindOf(err)]++
		time.Sleep(time.Duration(o.sends) * 2 * time.Millisecond)
	}
}

// kindCounts formats counts by kind in a stable order.
func kindCounts(m map[kernel.Kind]int) string {
	var parts []string
	for _, k := range []kernel.Kind{kernel.KindUnavailable, kernel.KindInternal, kernel.KindConflict, kernel.KindDenied, kernel.KindNotFound, kernel.KindInvalid} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
