package benchreport

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/invoke"
	"github.com/dlicense/dlicense/infra/tokens"
)

// ColdStart is one function's cold start under the Lambda Runtime
// Interface Emulator: from starting its process to its first answer to an
// event that reads or writes DynamoDB Local, over Runs new processes; and
// its next answer, warm.
type ColdStart struct {
	Function string
	Event    string
	Runs     int
	// Median and Max of the cold answers; Warm is the median second answer.
	Median, Max, Warm time.Duration
}

// coldEvents are what each function is invoked with, and what its answer
// must hold (a success).
var coldEvents = []struct{ function, event, want string }{
	{"ApiFunction", "events/views.json", `"statusCode":200`},
	{"StreamsFunction", "events/stream-heartbeats.json", `"batchItemFailures":null`},
	{"JobsFunction", `{"sweep":{"shard":0}}`, `"sweep":{"`},
}

// MeasureColdStarts builds each function's bootstrap and the emulator, and
// starts each function runs times on a table made from root's template on
// DynamoDB Local at endpoint, timing its first answer.
func MeasureColdStarts(ctx context.Context, root, endpoint string, runs int) ([]ColdStart, error) {
	dir, err := os.MkdirTemp("", "coldstart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := invoke.Build(ctx, root, dir, "ApiFunction", "StreamsFunction", "JobsFunction"); err != nil {
		return nil, err
	}
	table := fmt.Sprintf("bench-cold-%d", time.Now().UnixNano())
	db, err := dynamo.NewClient(ctx, dynamo.Config{Table: table, Endpoint: endpoint})
	if err != nil {
		return nil, err
	}
	in, err := dynamotest.TableFromTemplate(filepath.Join(root, "template.yaml"), dynamotest.TableLogicalID, table)
	if err != nil {
		return nil, err
	}
	if err := dynamotest.CreateTable(ctx, db, in); err != nil {
		return nil, err
	}
	key, err := tokens.GenerateKey("bench-cold")
	if err != nil {
		return nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"TABLE_NAME=" + table, "DYNAMODB_ENDPOINT=" + endpoint, "SIGNING_KEYS=" + key.Encode(), "TOKEN_ISSUER=dlicense-bench", "PLAN_CLAIM=plan"}
	var out []ColdStart
	for _, c := range coldEvents {
		event := []byte(c.event)
		if !strings.HasPrefix(c.event, "{") {
			if event, err = os.ReadFile(filepath.Join(root, c.event)); err != nil {
				return nil, err
			}
		}
		var cold, warm []time.Duration
		for range runs {
			e, err := invoke.Start(filepath.Join(dir, "aws-lambda-rie"), filepath.Join(dir, c.function, "bootstrap"), env)
			if err != nil {
				return nil, err
			}
			first, err := func() ([]byte, error) {
				ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				return e.Invoke(ictx, event)
			}()
			took := time.Since(e.Started)
			if err == nil && !strings.Contains(compact(first), c.want) {
				err = fmt.Errorf("%s answered %s, want %s", c.function, first, c.want)
			}
			if err != nil {
				e.Stop()
				return nil, fmt.Errorf("%s: %w\n%s", c.function, err, e.Logs())
			}
			began := time.Now()
			_, err = e.Invoke(ctx, event)
			warm = append(warm, time.Since(began))
			e.Stop()
			if err != nil {
				return nil, fmt.Errorf("%s, warm: %w", c.function, err)
			}
			cold = append(cold, took)
		}
		slices.Sort(cold)
		slices.Sort(warm)
		name := c.event
		if strings.HasPrefix(name, "{") {
			name = "a sweep of one shard"
		}
		out = append(out, ColdStart{Function: c.function, Event: name, Runs: runs, Median: cold[len(cold)/2], Max: cold[len(cold)-1], Warm: warm[len(warm)/2]})
	}
	return out, nil
}

// compact is a JSON answer without insignificant spaces.
func compact(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	c, _ := json.Marshal(v)
	return string(c)
}
