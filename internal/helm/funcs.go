package helm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
)

// funcs is the subset of Helm's template functions (Go templates' own,
// Sprig's, include, tpl, required) that chart templates use to build
// image references. A template calling anything else does not parse and
// is scanned for literal images instead (see scan.go).
func funcs(r *renderer) template.FuncMap {
	return template.FuncMap{
		"include": r.include,
		"tpl":     r.tpl,
		"required": func(msg string, v any) (any, error) {
			if empty(v) {
				return nil, errors.New(msg)
			}
			return v, nil
		},
		"fail":   func(msg string) (string, error) { return "", errors.New(msg) },
		"lookup": func(...any) map[string]any { return map[string]any{} },

		"default": func(d any, v ...any) any {
			if len(v) == 0 || empty(v[0]) {
				return d
			}
			return v[0]
		},
		"empty": empty,
		"coalesce": func(vs ...any) any {
			for _, v := range vs {
				if !empty(v) {
					return v
				}
			}
			return nil
		},
		"ternary": func(a, b any, c bool) any {
			if c {
				return a
			}
			return b
		},
		"quote":    func(vs ...any) string { return joinEach(vs, `"%s"`) },
		"squote":   func(vs ...any) string { return joinEach(vs, `'%s'`) },
		"toString": func(v any) string { return str(v) },
		"toYaml":   toYAML,
		"toJson": func(v any) string {
			b, _ := json.Marshal(v)
			return string(b)
		},
		"fromYaml": func(s string) map[string]any {
			m := map[string]any{}
			_ = yaml.Unmarshal([]byte(s), &m)
			return m
		},
		"indent":     indent,
		"nindent":    func(n int, s string) string { return "\n" + indent(n, s) },
		"trim":       strings.TrimSpace,
		"trimAll":    func(cut, s string) string { return strings.Trim(s, cut) },
		"trimSuffix": func(suf, s string) string { return strings.TrimSuffix(s, suf) },
		"trimPrefix": func(pre, s string) string { return strings.TrimPrefix(s, pre) },
		"upper":      strings.ToUpper,
		"lower":      strings.ToLower,
		"title": func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + s[1:]
		},
		"trunc": func(n int, s string) string {
			if n >= 0 && len(s) > n {
				return s[:n]
			}
			return s
		},
		"replace":   func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"contains":  func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix": func(p, s string) bool { return strings.HasPrefix(s, p) },
		"hasSuffix": func(p, s string) bool { return strings.HasSuffix(s, p) },
		"splitList": func(sep, s string) []any { return toAnys(strings.Split(s, sep)) },
		"join":      func(sep string, v any) string { return joinList(sep, v) },
		"cat":       func(vs ...any) string { return strings.TrimSpace(joinEach(vs, "%s")) },
		"b64enc":    func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"b64dec": func(s string) string {
			b, _ := base64.StdEncoding.DecodeString(s)
			return string(b)
		},
		"sha256sum": func(s string) string {
			h := sha256.Sum256([]byte(s))
			return hex.EncodeToString(h[:])
		},
		// Random values only name secrets; images never depend on them.
		"randAlphaNum": func(n int) string { return strings.Repeat("x", n) },
		"uuidv4":       func() string { return "00000000-0000-4000-8000-000000000000" },

		"int":     toInt,
		"int64":   func(v any) int64 { return int64(toInt(v)) },
		"float64": func(v any) float64 { f, _ := strconv.ParseFloat(str(v), 64); return f },
		"atoi":    func(s string) int { n, _ := strconv.Atoi(s); return n },
		"add": func(vs ...any) int {
			t := 0
			for _, v := range vs {
				t += toInt(v)
			}
			return t
		},
		"add1": func(v any) int { return toInt(v) + 1 },
		"sub":  func(a, b any) int { return toInt(a) - toInt(b) },
		"mul":  func(a, b any) int { return toInt(a) * toInt(b) },
		"div": func(a, b any) int {
			if toInt(b) == 0 {
				return 0
			}
			return toInt(a) / toInt(b)
		},
		"max": func(a, b any) int { return max(toInt(a), toInt(b)) },
		"min": func(a, b any) int { return min(toInt(a), toInt(b)) },

		"list": func(vs ...any) []any { return vs },
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[str(kv[i])] = kv[i+1]
			}
			return m
		},
		"get":    func(m map[string]any, k string) any { return m[k] },
		"set":    func(m map[string]any, k string, v any) map[string]any { m[k] = v; return m },
		"unset":  func(m map[string]any, k string) map[string]any { delete(m, k); return m },
		"hasKey": func(m map[string]any, k string) bool { _, ok := m[k]; return ok },
		"keys": func(m map[string]any) []any {
			ks := make([]string, 0, len(m))
			for k := range m {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			return toAnys(ks)
		},
		"merge":          func(dst map[string]any, srcs ...map[string]any) map[string]any { return mergeInto(dst, srcs, false) },
		"mergeOverwrite": func(dst map[string]any, srcs ...map[string]any) map[string]any { return mergeInto(dst, srcs, true) },
		"deepCopy":       func(v any) any { return deepCopy(v) },
		"first": func(v any) any {
			l := toList(v)
			if len(l) == 0 {
				return nil
			}
			return l[0]
		},
		"last": func(v any) any {
			l := toList(v)
			if len(l) == 0 {
				return nil
			}
			return l[len(l)-1]
		},
		"append": func(v any, e any) []any { return append(toList(v), e) },
		"has": func(e any, v any) bool {
			for _, x := range toList(v) {
				if reflect.DeepEqual(x, e) {
					return true
				}
			}
			return false
		},
		"kindIs": func(k string, v any) bool { return kind(v) == k },
		"kindOf": kind,
		"typeOf": func(v any) string { return fmt.Sprintf("%T", v) },

		"semverCompare": func(c, v string) (bool, error) {
			con, err := semver.NewConstraint(c)
			if err != nil {
				return false, err
			}
			ver, err := semver.NewVersion(v)
			if err != nil {
				return false, err
			}
			return con.Check(ver), nil
		},
		"regexMatch": func(re, s string) bool { ok, _ := regexp.MatchString(re, s); return ok },
		"regexReplaceAll": func(re, s, repl string) (string, error) {
			r, err := regexp.Compile(re)
			if err != nil {
				return "", err
			}
			return r.ReplaceAllString(s, repl), nil
		},
	}
}

// empty is Sprig's notion: zero values, empty collections and nil.
func empty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Ptr, reflect.Interface:
		return rv.IsNil()
	}
	return rv.IsZero()
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return 0
}

func kind(v any) string {
	if v == nil {
		return "invalid"
	}
	return reflect.ValueOf(v).Kind().String()
}

func toList(v any) []any {
	rv := reflect.ValueOf(v)
	if v == nil || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) {
		return nil
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out
}

func toAnys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func joinEach(vs []any, format string) string {
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		if v != nil {
			parts = append(parts, fmt.Sprintf(format, str(v)))
		}
	}
	return strings.Join(parts, " ")
}

func joinList(sep string, v any) string {
	l := toList(v)
	parts := make([]string, len(l))
	for i, x := range l {
		parts[i] = str(x)
	}
	return strings.Join(parts, sep)
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", max(n, 0))
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// mergeInto merges srcs into dst: keys dst lacks are added (all of them
// when overwrite is set), maps are merged recursively.
func mergeInto(dst map[string]any, srcs []map[string]any, overwrite bool) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for _, src := range srcs {
		for k, sv := range src {
			dv, ok := dst[k]
			dm, dIsMap := dv.(map[string]any)
			sm, sIsMap := sv.(map[string]any)
			switch {
			case ok && dIsMap && sIsMap:
				dst[k] = mergeInto(dm, []map[string]any{sm}, overwrite)
			case !ok || overwrite:
				dst[k] = deepCopy(sv)
			}
		}
	}
	return dst
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}
