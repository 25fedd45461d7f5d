package dynamo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Config says where the table is.
type Config struct {
	// Table is the table name (env TABLE_NAME): the only table of a service
	// in one region, the members' logs (Tables.Log) in several.
	Table string
	// ViewingTable and RegionalTable, when set, hold the stores of
	// Tables.Viewing and Tables.Regional (env VIEWING_TABLE_NAME,
	// REGIONAL_TABLE_NAME; docs/regions.md); else Table holds them.
	ViewingTable, RegionalTable string
	// Endpoint overrides the DynamoDB endpoint, for DynamoDB Local
	// (env DYNAMODB_ENDPOINT); empty means AWS.
	Endpoint string
	// Region is the AWS region (env AWS_REGION); DynamoDB Local ignores it.
	Region string
	// Credentials sign the calls when set. Otherwise a local endpoint gets
	// static local credentials, and AWS those of the Lambda environment
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN);
	// command-line tools set them from the shared configuration
	// (infra/ops/awsenv).
	Credentials aws.CredentialsProvider
	// MaxAttempts is how many times the SDK tries a call (4 if 0).
	MaxAttempts int
	// AttemptTimeout bounds each attempt of a call, from sending the
	// request to reading the answer (none if 0): an attempt that times out
	// is tried again like a dropped connection, within MaxAttempts and the
	// caller's deadline. A hung store then costs a bounded wait, not the
	// function's timeout. Ignored when HTTPClient is set.
	AttemptTimeout time.Duration
	// HTTPClient, when set, carries the DynamoDB client's calls (tests
	// record them with it).
	HTTPClient aws.HTTPClient
}

// Tables are the tables the configuration names.
func (c Config) Tables() Tables {
	return Tables{Log: c.Table, Viewing: c.ViewingTable, Regional: c.RegionalTable}
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv() (Config, error) {
	c := Config{
		Table:         os.Getenv("TABLE_NAME"),
		ViewingTable:  os.Getenv("VIEWING_TABLE_NAME"),
		RegionalTable: os.Getenv("REGIONAL_TABLE_NAME"),
		Endpoint:      os.Getenv("DYNAMODB_ENDPOINT"),
		Region:        os.Getenv("AWS_REGION"),
	}
	if c.Table == "" {
		return c, fmt.Errorf("TABLE_NAME is not set")
	}
	return c, nil
}

// AWSConfig is the AWS configuration of the table's clients (DynamoDB and
// its stream): the standard retryer with a few quick attempts and no
// client-side retry budget (the service retries conflicts itself, a request
// has a deadline, and a Lambda instance serves one request at a time), and
// the credentials Config says.
//
// It is built without the SDK's config package: its credential chain
// (profiles, SSO, STS, IMDS) is what a Lambda never uses and weighs about
// 2 MB in each bootstrap.
func AWSConfig(ctx context.Context, c Config) (aws.Config, error) {
	attempts := c.MaxAttempts
	if attempts == 0 {
		attempts = 4
	}
	cfg := aws.Config{
		Region:      c.Region,
		Credentials: c.Credentials,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = 500 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
	switch {
	case cfg.Credentials != nil:
	case c.Endpoint != "":
		cfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
	default:
		id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			return aws.Config{}, errors.New("aws config: no credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
		}
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN")))
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("aws config: no region (AWS_REGION)")
	}
	return cfg, nil
}

// NewClient returns a DynamoDB client configured by AWSConfig; for a local
// endpoint it also skips the response checksum check (DynamoDB Local sends
// none on error responses). optFns adjust it further (tests put a fault
// injecting transport there).
func NewClient(ctx context.Context, c Config, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	cfg, err := AWSConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
			o.DisableValidateResponseChecksum = true
		}
		switch {
		case c.HTTPClient != nil:
			o.HTTPClient = c.HTTPClient
		case c.AttemptTimeout > 0:
			o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(c.AttemptTimeout)
		}
	}}, optFns...)...), nil
}
