package registry

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// errorCode is one of the distribution-spec error codes with the HTTP status
// Ferry answers it with.
type errorCode struct {
	Code   string
	Status int
}

// The spec's error codes, in one table.
var (
	errBlobUnknown         = errorCode{"BLOB_UNKNOWN", http.StatusNotFound}
	errBlobUploadInvalid   = errorCode{"BLOB_UPLOAD_INVALID", http.StatusBadRequest}
	errBlobUploadUnknown   = errorCode{"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound}
	errDigestInvalid       = errorCode{"DIGEST_INVALID", http.StatusBadRequest}
	errManifestBlobUnknown = errorCode{"MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest}
	errManifestInvalid     = errorCode{"MANIFEST_INVALID", http.StatusBadRequest}
	errManifestUnknown     = errorCode{"MANIFEST_UNKNOWN", http.StatusNotFound}
	errNameInvalid         = errorCode{"NAME_INVALID", http.StatusBadRequest}
	errNameUnknown         = errorCode{"NAME_UNKNOWN", http.StatusNotFound}
	errSizeInvalid         = errorCode{"SIZE_INVALID", http.StatusBadRequest}
	errUnauthorized        = errorCode{"UNAUTHORIZED", http.StatusUnauthorized}
	errDenied              = errorCode{"DENIED", http.StatusForbidden}
	errUnsupported         = errorCode{"UNSUPPORTED", http.StatusMethodNotAllowed}
	errTooManyRequests     = errorCode{"TOOMANYREQUESTS", http.StatusTooManyRequests}
	errUnknown             = errorCode{"UNKNOWN", http.StatusInternalServerError}
	errUnavailable         = errorCode{"UNAVAILABLE", http.StatusServiceUnavailable}
	// RANGE_INVALID is distribution's code for a chunk whose Content-Range
	// does not fit the upload; the OCI spec names only the 416.
	errRangeInvalid = errorCode{"RANGE_INVALID", http.StatusRequestedRangeNotSatisfiable}
)

// apiError is an error answered to the client: a code, a message naming the
// problem and what to do, and optional detail.
type apiError struct {
	code    errorCode
	status  int // overrides code.Status when not zero (413, 416)
	message string
	detail  any
}

func (e *apiError) Error() string { return e.code.Code + ": " + e.message }

func newError(code errorCode, msg string) *apiError { return &apiError{code: code, message: msg} }

func (e *apiError) withStatus(s int) *apiError { e.status = s; return e }

func (e *apiError) withDetail(d any) *apiError { e.detail = d; return e }

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func writeAPIError(w http.ResponseWriter, r *http.Request, e *apiError) {
	status := e.status
	if status == 0 {
		status = e.code.Status
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.code.Code, Message: e.message, Detail: e.detail}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
