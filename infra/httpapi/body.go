package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/dlicense/dlicense/domain/kernel"
)

// decode reads a JSON body into v: at most MaxBody bytes, one object, no
// unknown fields. Errors name the field at fault.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeUnsupportedMedia, Message: "send application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return bodyError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		if err == nil {
			return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body must hold one JSON object"}
		}
		return bodyError(err)
	}
	// One JSON object: not an array, a string, a number or null.
	if raw[0] != '{' {
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body must be a JSON object"}
	}
	obj := json.NewDecoder(bytes.NewReader(raw))
	obj.DisallowUnknownFields()
	if err := obj.Decode(v); err != nil {
		return bodyError(err)
	}
	return nil
}

// jsonType names, as JSON does, what a Go type decodes from.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// decodeEmpty accepts an empty body or an empty JSON object.
func decodeEmpty(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		return bodyError(err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	var v struct{}
	return decode(w, r, &v)
}

// Codes of request bodies that cannot be read; the first two have statuses
// of their own (413 and 415), the others are 400.
const (
	CodeBodyTooLarge     = "BODY_TOO_LARGE"
	CodeUnsupportedMedia = "UNSUPPORTED_MEDIA_TYPE"
	CodeMalformedJSON    = "MALFORMED_JSON"
	CodeUnknownField     = "UNKNOWN_FIELD"
)

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeBodyTooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", MaxBody)}
	case errors.Is(err, io.EOF):
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body is empty"}
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body is not valid JSON"}
	case errors.As(err, &te) && te.Field == "":
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body must be a JSON object"}
	case errors.As(err, &te):
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: fmt.Sprintf("%s must be %s", te.Field, jsonType(te.Type)), Field: te.Field}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeUnknownField, Message: "unknown field " + f, Field: f}
	}
	return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body could not be read"}
}

// queryInt reads an optional whole-number query parameter (0 if absent).
func queryInt(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1_000_000 {
		return 0, kernel.Invalid(name, "%s must be a whole number", name)
	}
	return n, nil
}
