package imageset

import "fmt"

// FieldError is one problem in a configuration file, located by field path
// and line so the user can go straight to it.
type FieldError struct {
	File  string // file name as given to Parse
	Line  int    // 1-based; 0 when the field is absent from the file
	Field string // e.g. mirror.operators[1].packages[0].channels[0].minVersion
	Msg   string // what is wrong and what is allowed
}

func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}
