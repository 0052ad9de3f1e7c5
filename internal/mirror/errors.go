package mirror

import (
	"sort"
	"strings"

	"github.com/ferry-mirror/ferry/internal/plan"
)

// Exit code bits, the values oc-mirror v2 uses, so scripts carry over: a
// run whose additional images and operators failed exits 8|4 = 12.
const (
	ExitGeneric    = 1 << 0
	ExitRelease    = 1 << 1
	ExitOperator   = 1 << 2
	ExitAdditional = 1 << 3
	ExitHelm       = 1 << 4
)

func sectionBit(section string) int {
	switch section {
	case plan.SectionRelease:
		return ExitRelease
	case plan.SectionOperator:
		return ExitOperator
	case plan.SectionAdditional:
		return ExitAdditional
	case plan.SectionHelm:
		return ExitHelm
	}
	return ExitGeneric
}

// Error is a run that did not do everything: the exit code tells which
// sections failed and Report names the file listing each failure.
type Error struct {
	Code     int
	Msg      string
	Report   string
	Sections []string
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Report != "" {
		msg += "; details in " + e.Report
	}
	return msg
}

// ExitCode is the process exit status (cmd/ferry's main uses it).
func (e *Error) ExitCode() int {
	if e.Code == 0 {
		return ExitGeneric
	}
	return e.Code
}

func sectionError(msg, report string, sections map[string]bool) *Error {
	e := &Error{Msg: msg, Report: report}
	for s := range sections {
		e.Code |= sectionBit(s)
		e.Sections = append(e.Sections, s)
	}
	sort.Strings(e.Sections)
	if len(e.Sections) > 0 {
		e.Msg += " (sections: " + strings.Join(e.Sections, ", ") + ")"
	}
	return e
}
