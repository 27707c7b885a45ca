package archive

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ferrytool/ferry/manifest"
)

// VolumeContents is what one volume's index lists: the blobs it holds
// whole and those it holds a part of.
type VolumeContents struct {
	Number int
	Final  bool
	Blobs  []string
	Parts  []string
}

// VolumeRange is the volumes that may hold a blob, from From to To; To == 0
// means any volume from From on.
type VolumeRange struct{ From, To int }

// Locator says which volume holds a blob: exactly, for the volumes whose
// contents it knows, or as a range from the bill of materials' order, in
// which blobs fill the volumes. It needs no volume at hand, so a record of
// earlier runs serves as well as the volumes themselves.
type Locator struct {
	pos   map[string]int
	held  map[string][]int // digest -> volumes holding it (whole or a part)
	split map[string]bool  // digests seen as parts
	seen  map[int]bool
	spans map[int][2]int // volume -> first and last blob position
	final int            // number of the last volume, 0 when not seen
}

// NewLocator builds a locator from the bill of materials and what the
// volumes known so far hold.
func NewLocator(bom *manifest.BOM, vols []VolumeContents) *Locator {
	l := &Locator{pos: map[string]int{}, held: map[string][]int{}, split: map[string]bool{}, seen: map[int]bool{}, spans: map[int][2]int{}}
	for i, b := range bom.Blobs {
		l.pos[b.Digest] = i
	}
	for _, v := range vols {
		n := v.Number
		l.seen[n] = true
		if v.Final {
			l.final = n
		}
		for _, d := range v.Parts {
			l.split[d] = true
		}
		lo, hi := len(bom.Blobs), -1
		for _, list := range [][]string{v.Blobs, v.Parts} {
			for _, d := range list {
				if !containsInt(l.held[d], n) {
					l.held[d] = append(l.held[d], n)
				}
				if p, ok := l.pos[d]; ok {
					lo, hi = min(lo, p), max(hi, p)
				}
			}
		}
		if hi >= 0 {
			l.spans[n] = [2]int{lo, hi}
		}
	}
	return l
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// Where returns the volumes that hold, or should hold, a blob.
func (l *Locator) Where(digest string) []VolumeRange {
	if vols := l.held[digest]; len(vols) > 0 {
		sort.Ints(vols)
		lo, hi := vols[0], vols[len(vols)-1]
		if !l.split[digest] {
			return []VolumeRange{{lo, hi}}
		}
		// The parts not seen sit in the volumes next to those seen: after a
		// volume the blob ends, before one it starts.
		pos := l.pos[digest]
		var out []VolumeRange
		add := func(n int) {
			if n >= 1 && !l.seen[n] && (l.final == 0 || n <= l.final) {
				out = append(out, VolumeRange{n, n})
			}
		}
		for _, n := range vols {
			if s := l.spans[n]; s[1] == pos {
				add(n + 1)
			}
			if s := l.spans[n]; s[0] == pos {
				add(n - 1)
			}
		}
		if len(out) == 0 {
			out = append(out, VolumeRange{lo, hi})
		}
		return out
	}
	i := l.pos[digest]
	from, to := 1, 0
	for n, s := range l.spans {
		if s[1] < i && n+1 > from {
			from = n + 1
		}
		if s[0] > i && (to == 0 || n-1 < to) {
			to = n - 1
		}
	}
	if to == 0 && l.final > 0 {
		to = l.final
	}
	return []VolumeRange{{from, to}}
}

// DescribeVolumes renders volume ranges for a message: "volume 3",
// "volumes 2, 4", "one of volumes 2-5", "volume 3 or a later one".
func DescribeVolumes(rs []VolumeRange) string {
	if len(rs) == 0 {
		return ""
	}
	exact := map[int]bool{}
	var ranges []string
	for _, r := range rs {
		if r.From == r.To {
			exact[r.From] = true
		}
	}
	var nums []int
	for n := range exact {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	seen := map[string]bool{}
	for _, r := range rs {
		if r.From == r.To {
			continue
		}
		var s string
		if r.To == 0 {
			s = fmt.Sprintf("volume %d or a later one", r.From)
		} else {
			s = fmt.Sprintf("one of volumes %d-%d", r.From, r.To)
		}
		if !seen[s] {
			seen[s] = true
			ranges = append(ranges, s)
		}
	}
	var parts []string
	if len(nums) == 1 {
		parts = append(parts, fmt.Sprintf("volume %d", nums[0]))
	} else if len(nums) > 1 {
		strs := make([]string, len(nums))
		for i, n := range nums {
			strs[i] = fmt.Sprint(n)
		}
		parts = append(parts, "volumes "+strings.Join(strs, ", "))
	}
	sort.Strings(ranges)
	return strings.Join(append(parts, ranges...), ", ")
}
