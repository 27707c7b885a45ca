package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	yamlv3 "go.yaml.in/yaml/v3"
)

// ErrYAMLTooLarge is returned by [YAMLDecodedSize] for YAML that decodes to
// more than the limit it was given.
var ErrYAMLTooLarge = errors.New("YAML decodes to more than its limit")

// MaxYAMLDecodedSize caps what one YAML file outside a bundle (a pack's
// values, say) may decode to, aliases expanded; see [YAMLDecodedSize].
const MaxYAMLDecodedSize = 64 << 20

// yamlNodeCost is what one decoded node is counted as beyond its text: a map
// entry or list element costs memory even when it holds nothing.
const yamlNodeCost = 16

// YAMLDecodedSize returns roughly how many bytes the YAML stream data decodes
// to: the text of every scalar and key plus a little per node, each alias
// counted as a full copy of the node it names, which is what decoding into
// maps and lists makes of it. The stream is parsed into nodes once (aliases
// stay pointers, so memory follows the input) and each anchored node is
// sized once. More than limit gives [ErrYAMLTooLarge] as soon as it is known;
// YAML that does not parse gives the parser's error.
func YAMLDecodedSize(data []byte, limit int64) (int64, error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	var total int64
	for {
		var n yamlv3.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		s := &yamlSizer{limit: limit - total, sizes: map[*yamlv3.Node]int64{}}
		size, err := s.size(&n)
		if err != nil {
			return total, err
		}
		total += size
		if total > limit {
			return total, ErrYAMLTooLarge
		}
	}
}

type yamlSizer struct {
	limit int64
	sizes map[*yamlv3.Node]int64 // anchored nodes sized so far; -1 while being sized
}

func (s *yamlSizer) size(n *yamlv3.Node) (int64, error) {
	if n == nil {
		return 0, nil
	}
	if n.Kind == yamlv3.AliasNode {
		return s.size(n.Alias)
	}
	if n.Anchor != "" {
		switch v, ok := s.sizes[n]; {
		case ok && v < 0:
			return 0, fmt.Errorf("line %d: anchor %q holds an alias to itself", n.Line, n.Anchor)
		case ok:
			return v, nil
		}
		s.sizes[n] = -1
	}
	total := int64(yamlNodeCost + len(n.Value))
	for _, c := range n.Content {
		cs, err := s.size(c)
		if err != nil {
			return 0, err
		}
		total += cs
		if total > s.limit {
			return total, ErrYAMLTooLarge
		}
	}
	if n.Anchor != "" {
		s.sizes[n] = total
	}
	return total, nil
}
