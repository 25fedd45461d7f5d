package dynamo

import (
	"context"
	"errors"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/dlicense/dlicense/domain/kernel"
)

var transientCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"TransactionInProgressException":         true,
	"LimitExceededException":                 true,
}

// transient reports whether err may pass if the request is made again.
func transient(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && transientCodes[ae.ErrorCode()] {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// unavailable turns a transient failure into the domain's Unavailable kind,
// keeping the cause for logs; other errors pass through.
func unavailable(err error) error {
	if err == nil || !transient(err) {
		return err
	}
	return kernel.Unavailable("the store is busy or unreachable; retry after Retry-After (with the same Idempotency-Key for a keyed request)", err)
}
