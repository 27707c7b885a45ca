package collect

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FindImages returns every image reference in a Kubernetes object, as
// decoded from YAML or JSON, with its field path. It finds containers,
// initContainers and ephemeralContainers of every workload kind (their pod
// templates are just nested maps), and `image:` fields of custom resources
// in the forms charts use:
//
//	image: quay.io/org/app:1.0
//	image: {registry: quay.io, repository: org/app, tag: "1.0"}
//	{repository: nvcr.io/nvidia, image: driver, version: "550.54"}
//
// References are returned as written; the caller normalises and checks them.
func FindImages(obj map[string]any) []FoundImage {
	var out []FoundImage
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch t := v.(type) {
		case map[string]any:
			if ref := imageIn(t); ref != "" {
				out = append(out, FoundImage{Ref: ref, Where: joinField(at, "image")})
			}
			for _, k := range sortedMapKeys(t) {
				if k == "image" {
					if _, isMap := t[k].(map[string]any); isMap {
						continue // read as a whole above
					}
				}
				walk(t[k], joinField(at, k))
			}
		case []any:
			for i, e := range t {
				walk(e, at+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(obj, "")
	return out
}

// imageIn reads the image reference a map holds in its "image" key.
func imageIn(m map[string]any) string {
	switch img := m["image"].(type) {
	case string:
		img = strings.TrimSpace(img)
		if img == "" {
			return ""
		}
		// The NVIDIA operators' form: repository and version beside a bare
		// image name.
		if repo, ok := m["repository"].(string); ok && repo != "" && !strings.ContainsAny(img, "/:@") {
			ref := strings.TrimSuffix(repo, "/") + "/" + img
			if v := scalar(m["version"]); v != "" {
				if strings.HasPrefix(v, "sha256:") {
					return ref + "@" + v
				}
				return ref + ":" + v
			}
			if v := scalar(m["tag"]); v != "" {
				return ref + ":" + v
			}
			return ref
		}
		return img
	case map[string]any:
		repo, _ := img["repository"].(string)
		if repo == "" {
			repo, _ = img["name"].(string)
		}
		if repo == "" {
			return ""
		}
		ref := repo
		if reg, _ := img["registry"].(string); reg != "" {
			ref = strings.TrimSuffix(reg, "/") + "/" + repo
		}
		if tag := scalar(img["tag"]); tag != "" {
			ref += ":" + tag
		}
		if d := scalar(img["digest"]); d != "" {
			ref += "@" + d
		}
		return ref
	}
	return ""
}

func scalar(v any) string {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(t, 10)
	case int:
		return strconv.Itoa(t)
	case json.Number:
		return t.String()
	}
	return ""
}

func joinField(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func sortedMapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isPaletteMacro reports whether s holds a Palette or PaletteAI macro that
// only the platform can expand, such as {{.spectro.pack.x.options.uri}}.
func isPaletteMacro(s string) bool { return strings.Contains(s, "{{") }

// copyMap deep-copies JSON-typed values, so rendering never writes into the
// caller's values.
func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return copyMap(t)
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = copyValue(e)
		}
		return s
	}
	return v
}

func jsonUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	return nil
}
