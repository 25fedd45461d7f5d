package local

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"

	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"
)

// Limit is a route's throttle as API Gateway applies it: a token bucket
// filled at Rate a second, holding Burst.
type Limit struct {
	Rate  float64
	Burst int
}

// Throttles are an HTTP API's throttles: each route's own bucket, with
// the stage's default for routes without settings of their own.
type Throttles struct {
	Default Limit
	// Routes holds the routes with settings of their own, by "METHOD /path".
	Routes map[string]Limit
}

// ThrottlesFromTemplate reads the throttles the template gives its HTTP
// API (the API's DefaultRouteSettings, each route event's RouteSettings),
// with each parameter at its default, as a deployment without overrides
// gets them.
func ThrottlesFromTemplate(path string) (Throttles, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Throttles{}, err
	}
	var doc struct {
		Parameters map[string]struct {
			Default string `yaml:"Default"`
		} `yaml:"Parameters"`
		Resources map[string]struct {
			Type       string    `yaml:"Type"`
			Properties yaml.Node `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return Throttles{}, fmt.Errorf("%s: %w", path, err)
	}
	resolve := func(n *yaml.Node) (float64, error) {
		if n == nil {
			return 0, fmt.Errorf("no value")
		}
		v := n.Value
		if n.Tag == "!Ref" {
			p, ok := doc.Parameters[n.Value]
			if !ok {
				return 0, fmt.Errorf("!Ref %s names no parameter", n.Value)
			}
			v = p.Default
		}
		return strconv.ParseFloat(v, 64)
	}
	limitOf := func(settings *yaml.Node) (Limit, bool, error) {
		r, b := child(settings, "ThrottlingRateLimit"), child(settings, "ThrottlingBurstLimit")
		if r == nil && b == nil {
			return Limit{}, false, nil
		}
		rv, err := resolve(r)
		if err != nil {
			return Limit{}, false, fmt.Errorf("ThrottlingRateLimit: %w", err)
		}
		bv, err := resolve(b)
		if err != nil {
			return Limit{}, false, fmt.Errorf("ThrottlingBurstLimit: %w", err)
		}
		return Limit{Rate: rv, Burst: int(bv)}, true, nil
	}
	t := Throttles{Routes: map[string]Limit{}}
	for name, res := range doc.Resources {
		props := &res.Properties
		switch res.Type {
		case "AWS::Serverless::HttpApi":
			l, ok, err := limitOf(child(props, "DefaultRouteSettings"))
			if err != nil {
				return Throttles{}, fmt.Errorf("%s: %w", name, err)
			}
			if ok {
				t.Default = l
			}
		case "AWS::Serverless::Function":
			events := child(props, "Events")
			if events == nil {
				continue
			}
			for i := 0; i+1 < len(events.Content); i += 2 {
				ev := events.Content[i+1]
				if v := child(ev, "Type"); v == nil || v.Value != "HttpApi" {
					continue
				}
				p := child(ev, "Properties")
				l, ok, err := limitOf(child(p, "RouteSettings"))
				if err != nil {
					return Throttles{}, fmt.Errorf("%s.%s: %w", name, events.Content[i].Value, err)
				}
				if ok {
					t.Routes[child(p, "Method").Value+" "+child(p, "Path").Value] = l
				}
			}
		}
	}
	if t.Default.Rate == 0 {
		return Throttles{}, fmt.Errorf("%s: no HTTP API with DefaultRouteSettings", path)
	}
	return t, nil
}

// child is the value of key in mapping n (nil if none).
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// throttle holds a bucket per route, as API Gateway does.
type throttle struct {
	t       Throttles
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// allow takes a token from the bucket of route (a "METHOD /path" pattern).
func (th *throttle) allow(route string) bool {
	th.mu.Lock()
	b := th.buckets[route]
	if b == nil {
		l, ok := th.t.Routes[route]
		if !ok {
			l = th.t.Default
		}
		b = rate.NewLimiter(rate.Limit(l.Rate), l.Burst)
		th.buckets[route] = b
	}
	th.mu.Unlock()
	return b.Allow()
}

// Throttle makes the gateway throttle as t says: a request over its
// route's bucket answers 429 before any check, as API Gateway's does.
func (g *Gateway) Throttle(t Throttles) {
	g.throttle = &throttle{t: t, buckets: map[string]*rate.Limiter{}}
}

// throttled reports whether r is over its route's bucket.
func (g *Gateway) throttled(r *http.Request) bool {
	if g.throttle == nil {
		return false
	}
	_, pattern := g.routes.Handler(r)
	if pattern == "" {
		return false
	}
	return !g.throttle.allow(pattern)
}
