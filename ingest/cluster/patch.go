package cluster

import (
	"encoding/json"
	"strings"
)

// patchOp is one RFC 6902 JSON patch operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// guardedPatch prefixes ops with a replace of metadata.resourceVersion by
// the version the ops were computed from. The API server then applies the
// patch only to that version and answers 409 Conflict otherwise, so the
// caller re-reads and recomputes. (A `test` op on the resourceVersion would
// guard as well, but its failure comes back as a 422 that cannot be told
// apart from a real validation error.) Array elements are only ever
// addressed by index under this guard, and never with a merge patch, which
// would replace whole arrays.
func guardedPatch(resourceVersion string, ops []patchOp) ([]byte, error) {
	all := append([]patchOp{{Op: "replace", Path: "/metadata/resourceVersion", Value: resourceVersion}}, ops...)
	return json.Marshal(all)
}

// pointer renders a JSON pointer from keys.
func pointer(keys ...string) string {
	var b strings.Builder
	r := strings.NewReplacer("~", "~0", "/", "~1")
	for _, k := range keys {
		b.WriteByte('/')
		b.WriteString(r.Replace(k))
	}
	return b.String()
}

// nestedValue builds {k1: {k2: ... leaf}} for keys, or leaf when keys is
// empty.
func nestedValue(keys []string, leaf any) any {
	v := leaf
	for i := len(keys) - 1; i >= 0; i-- {
		v = map[string]any{keys[i]: v}
	}
	return v
}
