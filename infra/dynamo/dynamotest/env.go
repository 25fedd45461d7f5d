package dynamotest

import "os"

// EndpointEnv is the environment variable that carries the DynamoDB Local
// endpoint to tests; withdynamodb sets it for the command it runs.
const EndpointEnv = "DYNAMODB_ENDPOINT"

// EndpointFromEnv returns the endpoint in $DYNAMODB_ENDPOINT and whether it
// is set. Tests that need DynamoDB call it (or Require): when it is not set
// they must fail if $CI is "true" and skip otherwise, so CI never silently
// skips them.
func EndpointFromEnv() (endpoint string, ok bool) {
	endpoint = os.Getenv(EndpointEnv)
	return endpoint, endpoint != ""
}

// Require returns the DynamoDB Local endpoint for a test, applying the rule of
// EndpointFromEnv: without $DYNAMODB_ENDPOINT it calls t.Fatalf when $CI is
// "true" and t.Skipf otherwise. A *testing.T or *testing.B fits t.
func Require(t interface {
	Helper()
	Fatalf(string, ...any)
	Skipf(string, ...any)
}) string {
	t.Helper()
	if endpoint, ok := EndpointFromEnv(); ok {
		return endpoint
	}
	const how = "run the tests through withdynamodb (go run ./infra/dev/cmd/withdynamodb -- go test ./...)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set and CI=true: DynamoDB tests must not be skipped in CI; %s", EndpointEnv, how)
	} else {
		t.Skipf("%s is not set; skipping DynamoDB test (%s)", EndpointEnv, how)
	}
	return ""
}
