package collect

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/ferrytool/ferry/manifest"
)

// Gaps: what collect found named but does not carry. Rendered images are
// what an install deploys; an image only a chart's Chart.yaml annotation
// names is a hint, carried when its source has it and listed as a gap when
// not. A chart that does not load or render, and a bundle document that
// does not parse, are gaps too when the caller allows broken charts.

// gapBook collects gaps and the values paths of rendered images, from
// several goroutines.
type gapBook struct {
	mu          sync.Mutex
	gaps        []manifest.Gap
	valuesPaths map[string]string // normalised image -> values path
}

func (b *gapBook) add(g manifest.Gap) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gaps = append(b.gaps, g)
}

func (b *gapBook) list() []manifest.Gap {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]manifest.Gap(nil), b.gaps...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (b *gapBook) setValuesPath(ref, path string) {
	if path == "" {
		return
	}
	norm, err := NormalizeImage(ref)
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.valuesPaths == nil {
		b.valuesPaths = map[string]string{}
	}
	if _, ok := b.valuesPaths[norm]; !ok {
		b.valuesPaths[norm] = path
	}
}

func (b *gapBook) valuesPath(norm string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.valuesPaths[norm]
}

// wantFound queues an image a chart references: a rendered one as needed,
// an annotation-only one as a hint.
func (p *planner) wantFound(fi FoundImage, why manifest.Reason) {
	why.Hint = fi.Hint
	if !fi.Hint {
		p.gaps.setValuesPath(fi.Ref, fi.ValuesPath)
	}
	p.wantImage(fi.Ref, why)
}

// onlyHints says whether nothing but chart annotations wants the image.
func onlyHints(rs []manifest.Reason) bool {
	for _, r := range rs {
		if !r.Hint {
			return false
		}
	}
	return len(rs) > 0
}

// unresolved handles an image that did not resolve: a hint the source
// does not have becomes a gap (nil error); anything else fails the
// collect, with advice on where the chart set a rendered image.
func (p *planner) unresolved(w *imageWant, err error) error {
	if errors.Is(err, ErrNotFound) && onlyHints(w.reasons) {
		p.gaps.add(manifest.Gap{Kind: manifest.GapImage, Name: w.ref, WantedBy: w.reasons,
			Reason: "only chart annotations name it, what the charts render does not use it, and the source does not have it: " + err.Error()})
		return nil
	}
	var rendered []manifest.Reason
	for _, r := range w.reasons {
		if !r.Hint {
			rendered = append(rendered, r)
		}
	}
	if len(rendered) == 0 {
		rendered = w.reasons
	}
	err = fmt.Errorf("%w (wanted by %s)", err, reasonText(rendered))
	if path := p.gaps.valuesPath(w.ref); path != "" && errors.Is(err, ErrNotFound) {
		return &MissingImageError{Ref: w.ref, ValuesPath: path, err: err}
	}
	return err
}

// MissingImageError is an image a chart renders that its source does not
// have, with the values path the chart set it from: the caller can advise
// pointing that value (or a registry mirror) at where the image now is.
type MissingImageError struct {
	Ref        string
	ValuesPath string
	err        error
}

func (e *MissingImageError) Error() string { return e.err.Error() }
func (e *MissingImageError) Unwrap() error { return e.err }

// brokenChart fails the collect for a chart that does not load or render,
// or records it as a gap when broken charts are allowed.
func (p *planner) brokenChart(name string, why manifest.Reason, err error) error {
	if !p.opts.AllowBrokenCharts {
		return err
	}
	p.gaps.add(manifest.Gap{Kind: manifest.GapChart, Name: name, Reason: err.Error(), WantedBy: []manifest.Reason{why}})
	return nil
}

// brokenDocument does the same for a bundle document that does not parse.
func (p *planner) brokenDocument(name string, why manifest.Reason, err error) error {
	if !p.opts.AllowBrokenCharts {
		return err
	}
	p.gaps.add(manifest.Gap{Kind: manifest.GapDocument, Name: name, Reason: err.Error(), WantedBy: []manifest.Reason{why}})
	return nil
}

// strictGapError fails a strict collect that found gaps.
func strictGapError(gaps []manifest.Gap) error {
	names := make([]string, 0, len(gaps))
	for i, g := range gaps {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(gaps)-5))
			break
		}
		names = append(names, g.Kind+" "+g.Name)
	}
	return fmt.Errorf("%w: %d gap(s), refused as strict: %s", ErrGap, len(gaps), strings.Join(names, ", "))
}
