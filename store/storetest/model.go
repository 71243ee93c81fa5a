package storetest

import (
	"math"
	"slices"
	"time"

	"github.com/ctigate/ctigate/store"
)

// model is the contract written as the simplest code that could implement
// it: every stored version in a list, in date_added order.
type model struct {
	colls map[string]*modelColl
}

type modelColl struct {
	objs  []store.Object // ascending date_added
	last  int64          // the last date_added assigned, in microseconds
	added []time.Time    // every date_added assigned, ascending
	// gone holds the versions removed (each left a tombstone), by their
	// date_added in microseconds.
	gone map[int64]store.Object
}

func newModel() *model { return &model{colls: make(map[string]*modelColl)} }

func (m *model) coll(name string) *modelColl {
	c := m.colls[name]
	if c == nil {
		c = &modelColl{last: math.MinInt64, gone: make(map[int64]store.Object)}
		m.colls[name] = c
	}
	return c
}

func (c *modelColl) find(id string, version time.Time) (store.Object, bool) {
	for _, o := range c.objs {
		if o.ID == id && o.Version.Equal(version) {
			return o, true
		}
	}
	return store.Object{}, false
}

// add applies AddObjects with the clock reading now and returns the results
// the store must report.
func (m *model) add(name string, now time.Time, objs []store.Object) []store.AddResult {
	c := m.coll(name)
	res := make([]store.AddResult, len(objs))
	for i, o := range objs {
		if old, ok := c.find(o.ID, o.Version); ok {
			res[i] = store.AddResult{DateAdded: old.DateAdded, Existed: true}
			continue
		}
		d := max(now.UnixMicro(), c.last+1)
		c.last = d
		o.DateAdded = time.UnixMicro(d).UTC()
		c.objs = append(c.objs, o)
		c.added = append(c.added, o.DateAdded)
		res[i] = store.AddResult{DateAdded: o.DateAdded}
	}
	return res
}

// selected reports which of the versions vs (all of one id, any order)
// versions selects, as a set of indexes into vs.
func selected(vs []store.Object, versions []store.VersionMatch) map[int]bool {
	sel := make(map[int]bool)
	if len(vs) == 0 {
		return sel
	}
	first, last := 0, 0
	for i, o := range vs {
		if o.Version.Before(vs[first].Version) {
			first = i
		}
		if o.Version.After(vs[last].Version) {
			last = i
		}
	}
	for _, vm := range versions {
		switch vm.Kind {
		case store.All:
			for i := range vs {
				sel[i] = true
			}
		case store.First:
			sel[first] = true
		case store.Last:
			sel[last] = true
		case store.At:
			for i, o := range vs {
				if o.Version.Equal(vm.At) {
					sel[i] = true
				}
			}
		}
	}
	return sel
}

// versionsOf returns the versions of id passing the spec_version filter.
func (c *modelColl) versionsOf(id string, specs []string) []store.Object {
	var vs []store.Object
	for _, o := range c.objs {
		if o.ID == id && (len(specs) == 0 || slices.Contains(specs, o.SpecVersion)) {
			vs = append(vs, o)
		}
	}
	return vs
}

// query returns every version matching q, ignoring Limit and Next.
func (m *model) query(name string, q store.Query) []store.Object {
	c := m.colls[name]
	if c == nil {
		return nil
	}
	versions := q.Versions
	if len(versions) == 0 {
		versions = []store.VersionMatch{vLast}
	}
	var out []store.Object
	for _, o := range c.objs {
		if !q.AddedAfter.IsZero() && !o.DateAdded.After(q.AddedAfter) {
			continue
		}
		if len(q.IDs) > 0 && !slices.Contains(q.IDs, o.ID) {
			continue
		}
		if len(q.Types) > 0 && !slices.Contains(q.Types, o.Type) {
			continue
		}
		if len(q.SpecVersions) > 0 && !slices.Contains(q.SpecVersions, o.SpecVersion) {
			continue
		}
		vs := c.versionsOf(o.ID, q.SpecVersions)
		i := slices.IndexFunc(vs, func(x store.Object) bool { return x.Version.Equal(o.Version) })
		if !selected(vs, versions)[i] {
			continue
		}
		if q.WithoutRaw {
			o.Raw = nil
		}
		out = append(out, o)
	}
	return out
}

// delete applies DeleteObject for a removal that leaves tombstones
// (deleted, withdrawn or expired: each version removed leaves one on the
// collection's date_added clock) and returns how many versions it
// removes.
func (m *model) delete(name string, now time.Time, id string, versions []store.VersionMatch, specs []string) int {
	c := m.colls[name]
	if c == nil {
		return 0
	}
	if len(versions) == 0 {
		versions = []store.VersionMatch{vAll}
	}
	vs := c.versionsOf(id, specs)
	sel := selected(vs, versions)
	n := 0
	for i := range vs {
		if sel[i] {
			c.gone[vs[i].DateAdded.UnixMicro()] = vs[i]
			c.objs = slices.DeleteFunc(c.objs, func(o store.Object) bool {
				return o.ID == id && o.Version.Equal(vs[i].Version)
			})
			c.last = max(now.UnixMicro(), c.last+1)
			n++
		}
	}
	return n
}

// resolve applies ResolveAdded.
func (m *model) resolve(name string, das []time.Time) []store.AddedVersion {
	out := make([]store.AddedVersion, len(das))
	c := m.colls[name]
	if c == nil {
		return out
	}
	for i, da := range das {
		if da.Nanosecond()%1000 != 0 {
			continue
		}
		for _, o := range c.objs {
			if o.DateAdded.Equal(da) {
				out[i] = storedAs(o, false)
			}
		}
		if o, ok := c.gone[da.UnixMicro()]; ok {
			out[i] = storedAs(o, true)
		}
	}
	return out
}
