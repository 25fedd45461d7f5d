package setup

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dlicense/dlicense/infra/dynamo"
)

// TestParameterSignedGetParameter: the signing keys are read with one
// SigV4-signed GetParameter call, decrypted; refusals are reported by their
// code, without retries, and server errors are retried.
func TestParameterSignedGetParameter(t *testing.T) {
	var calls atomic.Int64
	answer := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var in struct {
			Name           string
			WithDecryption bool
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &in); err != nil || r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" || !in.WithDecryption {
			answer(w, 400, `{"__type":"ValidationException"}`)
			return
		}
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(auth, "/eu-west-1/ssm/aws4_request") || r.Header.Get("X-Amz-Security-Token") != "session" {
			answer(w, 400, `{"__type":"IncompleteSignatureException"}`)
			return
		}
		switch in.Name {
		case "/dlicense/keys":
			answer(w, 200, `{"Parameter":{"Name":"/dlicense/keys","Type":"SecureString","Value":" k1:seed \n","Version":3}}`)
		case "/busy":
			answer(w, 500, `{"__type":"InternalServerError"}`)
		default:
			answer(w, 400, `{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"not found"}`)
		}
	}))
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "session")
	c := dynamo.Config{Region: "eu-west-1", Table: "t"}
	ctx := context.Background()

	if v, err := parameter(ctx, c, "/dlicense/keys"); err != nil || v != "k1:seed" {
		t.Errorf("parameter = %q, %v; want k1:seed", v, err)
	}
	calls.Store(0)
	if _, err := parameter(ctx, c, "/missing"); err == nil || !strings.Contains(err.Error(), "ParameterNotFound") || calls.Load() != 1 {
		t.Errorf("missing parameter: %v after %d calls; want ParameterNotFound, not retried", err, calls.Load())
	}
	calls.Store(0)
	if _, err := parameter(ctx, c, "/busy"); err == nil || calls.Load() != 3 {
		t.Errorf("server error: %v after %d calls; want an error after 3", err, calls.Load())
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	if _, err := parameter(ctx, c, "/dlicense/keys"); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("no credentials: %v, want an error saying so", err)
	}
}
