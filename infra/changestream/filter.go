package changestream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// EventFilters are the stream function's event source filters, as
// template.yaml gives them in FilterCriteria (a record passes if it matches
// any): new event items, the screen writes the function handles (starts,
// stops, ends and checkpoint heartbeats: ck; the other heartbeats change
// only the slot), and erasures under way. The function never sees snapshots, counters, resume points, history
// entries, rows or a done erasure (its own writes), nor removals. Local
// runs apply the same patterns.
var EventFilters = []string{
	`{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"it": {"S": ["event"]}}}}`,
	`{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"it": {"S": ["screen"]}, "ck": {"BOOL": [true]}}}}`,
	`{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"it": {"S": ["erasure"]}}}}`,
}

// Filter is a set of Lambda event filter patterns (EventBridge syntax)
// restricted to what the stream function uses: nested objects whose leaves
// are lists of allowed literal values. A record passes if it matches any
// pattern; the zero Filter passes every record.
type Filter struct {
	// patterns map a key to a nested pattern (map[string]any) or to the
	// list of literals ([]any of string, json.Number, bool or nil) its
	// value must be one of.
	patterns []map[string]any
}

// ParseFilters parses the patterns of a filter.
func ParseFilters(patterns ...string) (Filter, error) {
	var f Filter
	for _, p := range patterns {
		one, err := ParseFilter(p)
		if err != nil {
			return Filter{}, err
		}
		f.patterns = append(f.patterns, one.patterns...)
	}
	return f, nil
}

// ParseFilter parses one filter pattern. Content filters ({"prefix": …},
// {"numeric": …}, {"exists": …} and the like) are refused rather than
// misread.
func ParseFilter(pattern string) (Filter, error) {
	if strings.TrimSpace(pattern) == "" {
		return Filter{}, nil
	}
	dec := json.NewDecoder(strings.NewReader(pattern))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return Filter{}, fmt.Errorf("filter pattern: %w", err)
	}
	if dec.More() {
		return Filter{}, errors.New("filter pattern: data after the pattern")
	}
	m, ok := root.(map[string]any)
	if !ok {
		return Filter{}, errors.New("filter pattern: not a JSON object")
	}
	if err := checkPattern(m, ""); err != nil {
		return Filter{}, fmt.Errorf("filter pattern: %w", err)
	}
	return Filter{patterns: []map[string]any{m}}, nil
}

func checkPattern(m map[string]any, path string) error {
	if len(m) == 0 {
		return fmt.Errorf("%s: empty object", orRoot(path))
	}
	for k, v := range m {
		at := strings.TrimPrefix(path+"."+k, ".")
		switch v := v.(type) {
		case map[string]any:
			if err := checkPattern(v, at); err != nil {
				return err
			}
		case []any:
			if len(v) == 0 {
				return fmt.Errorf("%s: empty list matches nothing", at)
			}
			for _, lit := range v {
				switch lit.(type) {
				case string, json.Number, bool, nil:
				default:
					return fmt.Errorf("%s: %v: only literal values are supported", at, lit)
				}
			}
		default:
			return fmt.Errorf("%s: %v: want an object or a list of values", at, v)
		}
	}
	return nil
}

func orRoot(path string) string {
	if path == "" {
		return "pattern"
	}
	return path
}

// Match reports whether a record passes the filter, matching each pattern
// against the record's JSON form, as Lambda does ("dynamodb" holds the
// change; attribute values are {"S": "…"} objects). Every key of a
// pattern must be present; a list value matches if any element does.
func (f Filter) Match(r events.DynamoDBEventRecord) bool {
	if len(f.patterns) == 0 {
		return true
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return false
	}
	return slices.ContainsFunc(f.patterns, func(p map[string]any) bool { return matchObject(p, doc) })
}

func matchObject(pattern, doc map[string]any) bool {
	for k, p := range pattern {
		v, ok := doc[k]
		if !ok {
			return false
		}
		switch p := p.(type) {
		case map[string]any:
			sub, ok := v.(map[string]any)
			if !ok || !matchObject(p, sub) {
				return false
			}
		case []any:
			if !matchValue(p, v) {
				return false
			}
		}
	}
	return true
}

func matchValue(allowed []any, v any) bool {
	if list, ok := v.([]any); ok {
		return slices.ContainsFunc(list, func(e any) bool { return matchValue(allowed, e) })
	}
	return slices.ContainsFunc(allowed, func(a any) bool { return sameLiteral(a, v) })
}

// sameLiteral compares a pattern literal with a record value: numbers by
// value, everything else exactly (the string "1" is not the number 1).
func sameLiteral(a, v any) bool {
	switch a := a.(type) {
	case string:
		s, ok := v.(string)
		return ok && s == a
	case json.Number:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		x, errA := strconv.ParseFloat(a.String(), 64)
		y, errV := strconv.ParseFloat(n.String(), 64)
		if errA != nil || errV != nil {
			return a == n
		}
		return x == y
	case bool:
		b, ok := v.(bool)
		return ok && b == a
	case nil:
		return v == nil
	}
	return false
}
