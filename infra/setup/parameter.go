package setup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/dlicense/dlicense/infra/dynamo"
)

// parameter reads an SSM SecureString parameter, decrypted: one signed
// GetParameter call (the SSM JSON protocol), made once per instance at
// start. It signs with the SDK's SigV4 signer and the credentials the table
// clients use; it does not link the SDK's SSM client, which would add
// 1.25 MB to the API bootstrap for this one call. The endpoint is
// AWS_ENDPOINT_URL_SSM when set (the SDK's variable), else the region's.
func parameter(ctx context.Context, c dynamo.Config, name string) (string, error) {
	c.Endpoint = "" // the parameter is in AWS even when the table is local
	cfg, err := dynamo.AWSConfig(ctx, c)
	if err != nil {
		return "", err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("read parameter %s: credentials: %w", name, err)
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_SSM")
	if endpoint == "" {
		endpoint = "https://ssm." + cfg.Region + ".amazonaws.com"
		if strings.HasPrefix(cfg.Region, "cn-") {
			endpoint += ".cn"
		}
	}
	body, err := json.Marshal(struct {
		Name           string
		WithDecryption bool
	}{name, true})
	if err != nil {
		return "", err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		v, retry, err := getParameter(ctx, endpoint, cfg.Region, creds, body)
		if err == nil {
			return v, nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return "", fmt.Errorf("read parameter %s: %w", name, lastErr)
}

// getParameter makes one call; retry says whether another may succeed.
func getParameter(ctx context.Context, endpoint, region string, creds aws.Credentials, body []byte) (value string, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssm", region, time.Now()); err != nil {
		return "", false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", true, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", true, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		code := e.Type[strings.LastIndex(e.Type, "#")+1:]
		if code == "" {
			code = resp.Status
		}
		return "", resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || code == "ThrottlingException", fmt.Errorf("%s (HTTP %d)", code, resp.StatusCode)
	}
	var out struct {
		Parameter struct {
			Value *string
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Parameter.Value == nil {
		return "", false, errors.New("GetParameter answered without a value")
	}
	return strings.TrimSpace(*out.Parameter.Value), false, nil
}
