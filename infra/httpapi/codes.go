package httpapi

import (
	"net/http"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/jobs"
)

// CodeInfo is one stable code of the catalogue.
type CodeInfo struct {
	Code string
	// Status is the HTTP status a problem with this code answers with;
	// 0 for a rule code, which only appears inside a DENIED problem's rules
	// (and in the timeline's refusals).
	Status  int
	Meaning string
}

// Codes is the catalogue: every code a problem+json answer carries, with
// its status and meaning, then the rule codes a refusal lists. A problem is
// answered with the status its code has here, and a code missing from here
// is answered as INTERNAL (and logged): no handler can answer outside it.
// docs/errors.md lists the same codes; tests keep both true.
var Codes = []CodeInfo{
	// 400
	{kernel.CodeInvalidInput, http.StatusBadRequest, "A field or parameter is missing or out of range; `field` names it."},
	{CodeMalformedJSON, http.StatusBadRequest, "The body is not one JSON object of the expected shape."},
	{CodeUnknownField, http.StatusBadRequest, "The body has a field the route does not take; `field` names it."},
	{viewing.CodeBadCursor, http.StatusBadRequest, "The history cursor was not given for this history."},
	{viewing.CodePositionOutOfRange, http.StatusBadRequest, "A position is past the end of the title."},
	{"INVALID_POLICY", http.StatusBadRequest, "The what-if policy document is not a valid policy."},
	// 401, 403
	{"UNAUTHORIZED", http.StatusUnauthorized, "No valid bearer token, or one naming no member (in AWS, API Gateway's authorizer answers first: 401 `{\"message\":\"Unauthorized\"}`)."},
	{"FORBIDDEN", http.StatusForbidden, "The token lacks the scope the route needs (admin, licence-status)."},
	{"DENIED", http.StatusForbidden, "The licence was refused; `rules` lists every rule code that refused it."},
	{viewing.CodeScreensLimit, http.StatusForbidden, "Every screen of the plan is in use; `limit` and `screens` say which."},
	{licensing.CodePlanNotEligible, http.StatusForbidden, "The plan does not include streaming."},
	{licensing.CodeTitleNotAvailable, http.StatusForbidden, "The title is outside its availability window."},
	{licensing.CodeTitleWithdrawn, http.StatusForbidden, "The title was withdrawn."},
	// 404, 405
	{"NOT_FOUND", http.StatusNotFound, "No such route."},
	{licensing.CodeLicenceNotFound, http.StatusNotFound, "No such licence on this device (another member's answers the same)."},
	{licensing.CodeTitleNotFound, http.StatusNotFound, "The title is not in the catalogue."},
	{viewing.CodeViewNotFound, http.StatusNotFound, "No such view on this device (another member's or device's answers the same)."},
	{"STUDIO_NOT_FOUND", http.StatusNotFound, "The studio is not in the catalogue."},
	{"WITHDRAWAL_NOT_FOUND", http.StatusNotFound, "The title was not withdrawn."},
	{jobs.CodeJobNotFound, http.StatusNotFound, "No such fleet-wide job."},
	{"METHOD_NOT_ALLOWED", http.StatusMethodNotAllowed, "The route does not take this method; `Allow` lists those it takes."},
	// 409
	{kernel.CodeKeyReused, http.StatusConflict, "The Idempotency-Key was used for a different request."},
	{viewing.CodeViewEnded, http.StatusConflict, "The view has ended; `reason` says why (stop playback)."},
	{viewing.CodeOutOfOrder, http.StatusConflict, "A heartbeat older than one already applied."},
	{viewing.CodeErasureInProgress, http.StatusConflict, "The account's viewing history is being erased; retry shortly."},
	{licensing.CodeWithdrawalExists, http.StatusConflict, "The title is already withdrawn from another time."},
	{jobs.CodeJobRunning, http.StatusConflict, "A fleet-wide job of that kind is running; follow it, or wait until it ends."},
	// 413, 415
	{CodeBodyTooLarge, http.StatusRequestEntityTooLarge, "The body is over 256 KB (MaxBody)."},
	{CodeUnsupportedMedia, http.StatusUnsupportedMediaType, "The body is not application/json."},
	// 500, 503
	{"INTERNAL", http.StatusInternalServerError, "Something went wrong on the service's side (logged, never detailed)."},
	{"UNAVAILABLE", http.StatusServiceUnavailable, "The service or a part of it is unavailable; retry after Retry-After."},
	{kernel.CodeStoreUnavailable, http.StatusServiceUnavailable, "DynamoDB throttled or failed past the retries; retry after Retry-After."},
	{kernel.CodeContention, http.StatusServiceUnavailable, "Too many concurrent changes to this account; retry after Retry-After."},

	// Rule codes: inside a DENIED problem's rules, and in the timeline.
	{licensing.CodeTitleNotFound, 0, "Acquire: the title is not in the catalogue."},
	{licensing.CodeTitleNotDownloadable, 0, "Acquire: the title cannot be downloaded."},
	{licensing.CodeTitleNotAvailable, 0, "Acquire: the title is outside its availability window."},
	{licensing.CodeTitleWithdrawn, 0, "Acquire, renew or play: the title was withdrawn."},
	{licensing.CodePlanNotEligible, 0, "Acquire: the plan does not include downloads."},
	{licensing.CodeAlreadyOnDevice, 0, "Acquire: the device already holds a licence of the title."},
	{licensing.CodeDeviceDownloadLimit, 0, "Acquire: the device holds as many downloads as the plan allows."},
	{licensing.CodeMemberDownloadLimit, 0, "Acquire: the member holds as many downloads as the plan allows."},
	{licensing.CodeDeviceCountLimit, 0, "Acquire: a new device over the plan's number of devices."},
	{licensing.CodeTitleDownloadQuota, 0, "Acquire: the title's downloads over the rolling year are used up."},
	{licensing.CodeStudioDownloadLimit, 0, "Acquire: the studio's cap on concurrent downloads is reached."},
	{licensing.CodeNotRenewable, 0, "Renew: the studio does not allow renewals."},
	{licensing.CodeRenewalLimit, 0, "Renew: the licence was renewed as often as allowed."},
	{licensing.CodeLicenceReleased, 0, "Renew: the licence was released."},
}

var answerCodes = func() map[string]CodeInfo {
	m := map[string]CodeInfo{}
	for _, c := range Codes {
		if c.Status != 0 {
			m[c.Code] = c
		}
	}
	return m
}()
