package registry

import (
	"net/http"

	"github.com/ferry-mirror/ferry/internal/audit"
	"github.com/ferry-mirror/ferry/internal/auth"
)

// auditAction names what a request does to the registry's content, or ""
// for requests that change nothing worth an audit record (reads, and the
// blob uploads a push is made of: the manifest PUT records the push).
func auditAction(method, kind string) string {
	switch {
	case method == http.MethodPut && kind == "manifest":
		return audit.Push
	case method == http.MethodDelete && (kind == "manifest" || kind == "blob"):
		return audit.Delete
	}
	return ""
}

// recordAudit writes the outcome of an audited request, refusals too.
func (r *Registry) recordAudit(req *http.Request, w http.ResponseWriter, action string, rt route, who *auth.Identity) {
	status := http.StatusOK
	if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
		status = sw.status
	}
	e := audit.Event{Action: action, Remote: auth.ClientAddr(req), Repo: rt.name, Ref: rt.ref, Status: status,
		Digest: w.Header().Get("Docker-Content-Digest")}
	if who != nil {
		e.User = who.User
	}
	switch {
	case status < 300:
		e.Result = audit.OK
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Result = audit.Refused
	default:
		e.Result = audit.Failed
	}
	r.audit.Record(req.Context(), e)
}
