// Package console holds the browser tests of the support console (the page
// the API function serves at /console): headless Chromium, driven with
// chromedp, against the local API in-process. It has no code of its own.
// Without Chromium the tests skip, and fail under CI=true.
package console
