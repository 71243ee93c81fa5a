package store

import (
	"bytes"
	"testing"
)

// joinedPage returns a page of the given objects copied the way a backend
// does for Joined: each followed by a comma, in segments of at most
// segLen bytes.
func joinedPage(raws []string, segLen int) Page {
	var segs [][]byte
	var objs []Object
	var cur []byte
	for _, r := range raws {
		if len(cur)+len(r)+1 > segLen && len(cur) > 0 {
			segs = append(segs, cur)
			cur = make([]byte, 0, segLen)
		}
		if cur == nil {
			cur = make([]byte, 0, segLen)
		}
		start := len(cur)
		cur = append(cur, r...)
		cur = append(cur, ',')
		objs = append(objs, Object{Raw: cur[start : start+len(r) : start+len(r)]})
	}
	segs = append(segs, cur[:len(cur)-1])
	return Page{Objects: objs}.WithJoined(segs)
}

// TestPageJoined: Joined gives the objects' bytes joined by commas while
// they are the very bytes the backend copied, in order, and nothing once
// the page's objects were filtered, reordered or replaced, or the
// segments hold anything else.
func TestPageJoined(t *testing.T) {
	raws := []string{`{"id":"a"}`, `{"id":"bb"}`, `{"id":"ccc"}`, `{"id":"dddd"}`, `{"id":"e"}`}
	want := []byte(`{"id":"a"},{"id":"bb"},{"id":"ccc"},{"id":"dddd"},{"id":"e"}`)
	for _, segLen := range []int{1 << 10, 24, 12} {
		p := joinedPage(raws, segLen)
		segs := p.Joined()
		if got := bytes.Join(segs, nil); !bytes.Equal(got, want) {
			t.Fatalf("segments of %d: joined %q, want %q", segLen, got, want)
		}
		if segLen == 12 && len(segs) != len(raws) {
			t.Fatalf("segments of 12: %d segments, want one per object", len(segs))
		}

		changed := map[string]func(p *Page){
			"filtered":        func(p *Page) { p.Objects = append(p.Objects[:1:1], p.Objects[2:]...) },
			"last dropped":    func(p *Page) { p.Objects = p.Objects[:len(p.Objects)-1] },
			"first dropped":   func(p *Page) { p.Objects = p.Objects[1:] },
			"reordered":       func(p *Page) { p.Objects[1], p.Objects[2] = p.Objects[2], p.Objects[1] },
			"replaced":        func(p *Page) { p.Objects[3].Raw = bytes.Clone(p.Objects[3].Raw) },
			"redacted":        func(p *Page) { p.Objects[2].Raw = p.Objects[2].Raw[:5] },
			"no objects":      func(p *Page) { p.Objects = nil },
			"comma changed":   func(p *Page) { p.joined[0][len(raws[0])] = ' ' },
			"segment added":   func(p *Page) { p.joined = append(p.joined, []byte(`,{"x":1}`)) },
			"segment dropped": func(p *Page) { p.joined = p.joined[:len(p.joined)-1] },
		}
		for name, change := range changed {
			p := joinedPage(raws, segLen)
			change(&p)
			if segs := p.Joined(); segs != nil {
				t.Errorf("segments of %d, %s: Joined gave %q", segLen, name, bytes.Join(segs, nil))
			}
		}
	}
	if segs := (&Page{Objects: []Object{{Raw: []byte(`{}`)}}}).Joined(); segs != nil {
		t.Errorf("a page without segments: Joined gave %q", segs)
	}
}

// TestPageRelease: the backend's release runs once, however many copies
// of the page are released, and a released page is empty.
func TestPageRelease(t *testing.T) {
	n := 0
	p := Page{Objects: []Object{{ID: "x"}}}.WithRelease(func() { n++ })
	q := p
	p.Release()
	q.Release()
	p.Release()
	if n != 1 {
		t.Errorf("release ran %d times, want 1", n)
	}
	if p.Objects != nil || p.Joined() != nil {
		t.Error("a released page still holds objects")
	}
	var none Page
	none.Release() // nothing to give back: no panic
}
