package regions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// proxy is a region's DynamoDB endpoint: it forwards every call to the
// DynamoDB Local behind it, and emulates what the region sees of the two
// kinds of global table.
//
//   - The log table (multi-Region strong consistency) is one table that
//     every region's proxy forwards to: a conditional write is checked
//     against the latest version, whatever the region. A region cut off
//     from the others cannot reach the quorum: its writes and strongly
//     consistent reads of the log fail (500 InternalServerError, which the
//     SDK retries and the service answers as STORE_UNAVAILABLE), and only
//     eventually consistent reads are served.
//   - Its viewing table replica is the region's own table; every write to
//     it is stamped with the time it was made (attribute _ts), by which the
//     replicator resolves conflicts, last writer wins.
type proxy struct {
	region  int
	log     string // the log table's name
	viewing string // the region's viewing replica
	next    *httputil.ReverseProxy
	cut     atomic.Bool
	clock   func() int64 // the write stamps: Unix ns, made unique per region
}

func newProxy(region int, target, log, viewing string, clock func() int64) (*proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	return &proxy{region: region, log: log, viewing: viewing, next: httputil.NewSingleHostReverseProxy(u), clock: clock}, nil
}

// stampAttr is the attribute holding a viewing item's write time.
const stampAttr = "_ts"

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	service, op, _ := strings.Cut(target, ".")
	if !strings.HasPrefix(service, "DynamoDB_") || r.Body == nil {
		p.next.ServeHTTP(w, r) // the streams API, and anything else
		return
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		p.forward(w, r, body)
		return
	}
	if p.cut.Load() && p.touchesLog(op, req) {
		fail(w, "InternalServerError", "the region cannot reach the other replicas of a strongly consistent table")
		return
	}
	if p.stamp(op, req) {
		if b, err := json.Marshal(req); err == nil {
			body = b
		}
	}
	p.forward(w, r, body)
}

func (p *proxy) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	p.next.ServeHTTP(w, r)
}

// touchesLog reports whether a call writes the log table or reads it
// strongly consistent: what a region cut off from the quorum cannot do.
func (p *proxy) touchesLog(op string, req map[string]any) bool {
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem":
		return req["TableName"] == p.log
	case "GetItem", "Query", "Scan":
		return req["TableName"] == p.log && req["ConsistentRead"] == true
	case "BatchWriteItem":
		_, ok := object(req["RequestItems"])[p.log]
		return ok
	case "BatchGetItem":
		ka := object(object(req["RequestItems"])[p.log])
		return ka != nil && ka["ConsistentRead"] == true
	case "TransactWriteItems", "TransactGetItems":
		for _, ti := range list(req["TransactItems"]) {
			for _, w := range object(ti) {
				if object(w)["TableName"] == p.log {
					return true
				}
			}
		}
	}
	return false
}

// stamp sets the write time of every item a call writes to the region's
// viewing replica; it reports whether it changed the call.
func (p *proxy) stamp(op string, req map[string]any) bool {
	ts := map[string]any{"N": strconv.FormatInt(p.clock(), 10)}
	switch op {
	case "PutItem":
		if req["TableName"] != p.viewing {
			return false
		}
		object(req["Item"])[stampAttr] = ts
		return true
	case "UpdateItem":
		if req["TableName"] != p.viewing {
			return false
		}
		expr, _ := req["UpdateExpression"].(string)
		set := "#_ts = :_ts"
		if i := strings.Index(strings.ToUpper(expr), "SET "); i >= 0 {
			expr = expr[:i+4] + set + ", " + expr[i+4:]
		} else {
			expr = "SET " + set + " " + expr
		}
		req["UpdateExpression"] = expr
		names := object(req["ExpressionAttributeNames"])
		if names == nil {
			names = map[string]any{}
		}
		names["#_ts"] = stampAttr
		req["ExpressionAttributeNames"] = names
		values := object(req["ExpressionAttributeValues"])
		if values == nil {
			values = map[string]any{}
		}
		values[":_ts"] = ts
		req["ExpressionAttributeValues"] = values
		return true
	case "BatchWriteItem":
		changed := false
		for _, w := range list(object(req["RequestItems"])[p.viewing]) {
			if item := object(object(object(w)["PutRequest"])["Item"]); item != nil {
				item[stampAttr], changed = ts, true
			}
		}
		return changed
	}
	return false
}

func object(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// fail answers as DynamoDB does (awsJson1_0).
func fail(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("regions-%d", time.Now().UnixNano()))
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, msg)
}
