package faults_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dlicense/dlicense/infra/dev/faults"
)

// fakeDynamo answers every call with an empty success and counts the calls
// that reached it, by operation.
type fakeDynamo struct {
	mu   sync.Mutex
	hits map[string]int
}

func (f *fakeDynamo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	f.mu.Lock()
	f.hits[faults.Operation(r)]++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	io.WriteString(w, "{}")
}

func (f *fakeDynamo) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[op]
}

func fakeClient(t *testing.T, plan faults.Plan, attempts int) (*dynamodb.Client, *faults.Transport, *fakeDynamo) {
	t.Helper()
	fake := &fakeDynamo{hits: map[string]int{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	tr := faults.New(nil, plan, 1)
	db, err := faults.Client(context.Background(), srv.URL, tr, attempts)
	if err != nil {
		t.Fatal(err)
	}
	return db, tr, fake
}

func putItem(ctx context.Context, db *dynamodb.Client) error {
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String("t"),
		Item:      map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "x"}},
	})
	return err
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Every fault kind, injected on every call, reaches the caller in the shape
// the SDK gives the real thing, after the SDK has spent all its attempts.
func TestEachFaultReachesTheCallerAsTheRealOne(t *testing.T) {
	const attempts = 3
	tests := []struct {
		name      string
		plan      faults.Plan
		forwarded int
		check     func(err error) bool
	}{
		{"throttle", faults.Plan{Throttle: 1}, 0, func(err error) bool {
			c := apiCode(err)
			return c == "ProvisionedThroughputExceededException" || c == "ThrottlingException"
		}},
		{"5xx", faults.Plan{ServerError: 1}, 0, func(err error) bool {
			s := httpStatus(err)
			return s == 500 || s == 503
		}},
		{"reset", faults.Plan{Reset: 1}, 0, func(err error) bool {
			var op *net.OpError
			return errors.Is(err, syscall.ECONNRESET) && errors.As(err, &op) && strings.Contains(err.Error(), "connection reset by peer")
		}},
		{"lost response", faults.Plan{LostResponse: 1}, attempts, func(err error) bool {
			var ne net.Error
			return errors.As(err, &ne) && ne.Timeout()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, tr, fake := fakeClient(t, tt.plan, attempts)
			err := putItem(context.Background(), db)
			if err == nil || !tt.check(err) {
				t.Fatalf("PutItem under %s = %v, want the injected fault", tt.name, err)
			}
			if got := fake.count("PutItem"); got != tt.forwarded {
				t.Errorf("PutItem under %s reached DynamoDB %d times, want %d", tt.name, got, tt.forwarded)
			}
			if s := tr.Stats(); s.Calls != attempts || s.Faults() != attempts || s.Forwarded != tt.forwarded {
				t.Errorf("Stats() = %v, want %d calls, all faulted, %d forwarded", s, attempts, tt.forwarded)
			}
		})
	}
}

// Faults hit only the operations the plan names.
func TestPlanOpsLimitTheFaults(t *testing.T) {
	db, tr, fake := fakeClient(t, faults.Plan{Reset: 1, Ops: []string{"DynamoDB_20120810.PutItem"}}, 2)
	ctx := context.Background()
	if _, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("t")}); err != nil {
		t.Fatalf("Query = %v, want no fault", err)
	}
	if err := putItem(ctx, db); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("PutItem = %v, want a connection reset", err)
	}
	if q, p := fake.count("Query"), fake.count("PutItem"); q != 1 || p != 0 {
		t.Errorf("DynamoDB saw Query %d, PutItem %d times; want 1 and 0", q, p)
	}
	if s := tr.Stats(); s.Reset != 2 || s.Calls != 3 {
		t.Errorf("Stats() = %v, want 3 calls, 2 resets", s)
	}
}

// recorder is a base transport that answers 200 without a network.
type recorder struct{}

func (recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
}

// schedule returns the faults n sequential calls get.
func schedule(seed uint64, n int) []string {
	tr := faults.New(recorder{}, faults.Plan{Throttle: 0.2, ServerError: 0.2, Reset: 0.2, LostResponse: 0.2}, seed)
	out := make([]string, n)
	for i := range out {
		req, _ := http.NewRequest("POST", "http://dynamo.local/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.PutItem")
		resp, err := tr.RoundTrip(req)
		switch {
		case err != nil:
			out[i] = err.Error()
		default:
			out[i] = resp.Status
		}
	}
	return out
}

func TestScheduleIsDeterministicForASeed(t *testing.T) {
	a, b, c := schedule(7, 200), schedule(7, 200), schedule(8, 200)
	if !slices.Equal(a, b) {
		t.Errorf("two transports with seed 7 injected different faults")
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 injected the same 200 faults")
	}
}
