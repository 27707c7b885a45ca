package manifest

import (
	"fmt"
	"strconv"
	"strings"
)

// Object is one Kubernetes-style object from a bundle, held as the
// unstructured map YAML decoding produced (map[string]any, []any, string,
// int64, float64, bool, nil), so unknown fields are never lost.
type Object struct {
	// File is the archive path of the YAML file the object came from.
	File string
	// Doc is the object's 0-based document position in File.
	Doc int
	// Content is the whole object.
	Content map[string]any
}

func (o *Object) str(p ...string) string {
	v, _ := Path(p).Get(o.Content)
	return scalarString(v)
}

// Kind returns the object's kind.
func (o *Object) Kind() string { return o.str("kind") }

// APIVersion returns the object's apiVersion, "" when it has none.
func (o *Object) APIVersion() string { return o.str("apiVersion") }

// Name returns metadata.name.
func (o *Object) Name() string { return o.str("metadata", "name") }

// Namespace returns metadata.namespace.
func (o *Object) Namespace() string { return o.str("metadata", "namespace") }

// String names the object for messages: kind, name and where it came from.
func (o *Object) String() string {
	return fmt.Sprintf("%s %s (%s, document %d)", o.Kind(), o.Name(), o.File, o.Doc)
}

// DeepCopy returns a copy that shares nothing with o, for callers that
// rewrite fields (a chart repository, a registry UID) without touching the
// bundle as read.
func (o *Object) DeepCopy() *Object {
	c := *o
	c.Content, _ = deepCopyValue(o.Content).(map[string]any)
	return &c
}

func deepCopyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopyValue(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deepCopyValue(e)
		}
		return s
	default:
		return v // strings, numbers, bools and nil are values
	}
}

// Path locates a value inside an object: map keys, and decimal indices for
// list elements. Its String form is a JSON pointer (RFC 6901), the form JSON
// patches use.
type Path []string

// String returns the path as a JSON pointer, e.g. "/spec/packs/0/name".
func (p Path) String() string {
	var b strings.Builder
	for _, e := range p {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(e))
	}
	return b.String()
}

// Child returns a new path with elems appended; p is not changed.
func (p Path) Child(elems ...string) Path {
	c := make(Path, 0, len(p)+len(elems))
	return append(append(c, p...), elems...)
}

// Get returns the value at p in obj.
func (p Path) Get(obj map[string]any) (any, bool) {
	var cur any = obj
	for _, e := range p {
		switch t := cur.(type) {
		case map[string]any:
			v, ok := t[e]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(e)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			cur = t[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Set stores v at p in obj, creating missing maps on the way. A list index
// must already exist.
func (p Path) Set(obj map[string]any, v any) error {
	if len(p) == 0 {
		return fmt.Errorf("set: empty path")
	}
	var cur any = obj
	for n, e := range p {
		last := n == len(p)-1
		switch t := cur.(type) {
		case map[string]any:
			if last {
				t[e] = v
				return nil
			}
			next, ok := t[e]
			if !ok || next == nil {
				next = map[string]any{}
				t[e] = next
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(e)
			if err != nil || i < 0 || i >= len(t) {
				return fmt.Errorf("set %s: no list element %q", p, e)
			}
			if last {
				t[i] = v
				return nil
			}
			cur = t[i]
		default:
			return fmt.Errorf("set %s: %s is not a map or list", p, p[:n])
		}
	}
	return nil
}
