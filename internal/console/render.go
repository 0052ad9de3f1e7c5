package console

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// view is what the layout shows around a page.
type view struct {
	Title   string
	Page    string // the nav entry to highlight
	User    string // "" when anonymous
	Open    bool   // authentication off
	Admin   bool
	CSRF    string
	Data    any
	Message string
}

var funcs = template.FuncMap{
	"bytes": transfer.FormatBytes,
	"short": func(d string) string {
		if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
			return d[:i+13]
		}
		return d
	},
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}

// render executes page into a buffer first, so a template error becomes
// a clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *request, status int, page, title string, data any) {
	v := view{Title: title, Page: page, CSRF: r.csrf, Data: data}
	if r.who != nil {
		v.User, v.Open, v.Admin = r.who.User, r.who.Open(), r.who.IsAdmin()
	}
	t, ok := c.pages[page]
	if !ok {
		t = c.pages["error"]
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		c.log.ErrorContext(r.Context(), "console template", "page", page, "err", err)
		http.Error(w, "internal error rendering the page; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail shows an error page.
func (c *Console) fail(w http.ResponseWriter, r *request, status int, msg string) {
	c.render(w, r, status, "error", http.StatusText(status), map[string]any{"Status": status, "Msg": msg})
}

// internal logs err and shows a generic error.
func (c *Console) internal(w http.ResponseWriter, r *request, what string, err error) {
	c.log.ErrorContext(r.Context(), "console: "+what, "path", r.URL.Path, "err", err)
	c.fail(w, r, http.StatusInternalServerError, what+" failed; see the server log.")
}

// canPull is the rule of /v2/_catalog: a repository is shown only to
// those who may pull it.
func (r *request) canPull(repo string) bool { return r.who.Can(repo, auth.Pull) }
