package gateway

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
)

// Decision names in dry-run results (Result.Decision).
const (
	DecisionPublish         = "publish"
	DecisionPublishRedacted = "publish_redacted"
	DecisionWithhold        = "withhold"
	DecisionRejected        = "rejected" // ingest would refuse the object
)

// Result is what a dry run says of one element of a bundle: the line
// `ctigate policy check --json` prints, and an element of what
// POST /api/v1/routes/{route}/dry-run returns.
type Result struct {
	Index    int       `json:"index"`
	ID       string    `json:"id"`
	Version  string    `json:"version,omitempty"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason,omitempty"` // the withholding reason, or a redaction's distinct reasons, comma-separated
	Detail   string    `json:"detail,omitempty"`
	TLP      string    `json:"tlp,omitempty"`
	Removed  []Removal `json:"removed,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
	// Awaiting lists the ids the object refers to that neither the bundle
	// nor the producer's earlier submissions hold (live dry runs only):
	// fan-out would wait up to the route's reference_wait for them before
	// deciding as above.
	Awaiting []string `json:"awaiting,omitempty"`
}

// Removal is one property a redaction removes.
type Removal struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// Summary counts what a dry run decided. Decisions are keyed by the
// words people read ("publish", "publish redacted", "withhold",
// "rejected at ingest").
type Summary struct {
	Route         string         `json:"route"`
	Collection    string         `json:"collection"`
	Ceiling       string         `json:"ceiling"`
	PolicyVersion string         `json:"policy_version"`
	Objects       int            `json:"objects"`
	Decisions     map[string]int `json:"decisions"`
	Reasons       map[string]int `json:"reasons"`
	// State says what the run knew of the route: "live" (what its
	// collection holds, as fan-out sees it) or "offline" (nothing: a
	// reference to, or a revoked version of, an object the route
	// published before is judged as if it had not).
	State string `json:"state"`
}

// Words returns how people read a Result's decision.
func Words(decision string) string {
	switch decision {
	case DecisionPublishRedacted:
		return "publish redacted"
	case DecisionRejected:
		return "rejected at ingest"
	}
	return decision
}

// DryRun decides about items (a decoded envelope, in order) for d's route
// as ingest and fan-out would, storing nothing: the bundle's marking
// definitions are registered first, in a copy of producer's registry;
// then the objects are decided as one set (Decider.DecideAll), so the
// result does not depend on their order in the bundle. d.Holds, when set, is the route's
// live state. An error is one of reading that state.
func DryRun(items []stix.Item, d Decider, producer string) ([]Result, Summary, error) {
	r := d.Route
	sum := Summary{
		Route: r.Name(), Collection: r.ID(), Ceiling: r.Ceiling().String(), PolicyVersion: r.Version(),
		Decisions: map[string]int{}, Reasons: map[string]int{}, State: "offline",
	}
	if d.Holds != nil {
		sum.State = "live"
	}
	d.Markings = d.Markings.Clone(producer)
	d.batch, d.err = nil, nil
	refused := map[int]error{}
	for i := range items {
		it := &items[i]
		if it.Err == nil && it.Object.Type == "marking-definition" {
			if err := d.Markings.Of(producer).Add(it.Raw); err != nil && ctigate.KindOf(err) != ctigate.Unsupported {
				refused[i] = err
			}
		}
	}
	var objs []Object
	var at []int // objs[k] is items[at[k]]
	for i := range items {
		it := &items[i]
		if it.Err == nil && refused[i] == nil {
			o := Object{Raw: it.Raw, Type: it.Object.Type, ID: it.Object.ID, Producer: producer}
			o.Version, _ = stix.ParseTimestamp(it.Version) // zero when unversioned
			objs = append(objs, o)
			at = append(at, i)
		}
	}
	judged, err := d.DecideAll(objs)
	if err != nil {
		return nil, sum, err
	}
	byItem := make(map[int]*Judged, len(at))
	for k, i := range at {
		byItem[i] = &judged[k]
	}
	out := make([]Result, 0, len(items))
	for i := range items {
		it := &items[i]
		res := Result{Index: it.Index, ID: it.ID, Version: it.Version}
		rejected := it.Err
		if rejected == nil {
			rejected = refused[i]
		}
		if j := byItem[i]; rejected == nil && j != nil {
			if j.Invalid != nil {
				rejected = j.Invalid
			} else {
				res.fill(&j.Decision)
				if d.Lookahead != nil && len(j.Awaiting) > 0 && r.ReferenceWait() > 0 {
					res.Awaiting = j.Awaiting
				}
				tlp := j.Decision.TLP
				if !tlp.Known() {
					tlp = j.Res.TLP
				}
				if tlp.Known() {
					res.TLP = tlp.String()
				}
			}
		}
		if rejected != nil {
			res.Decision, res.Detail = DecisionRejected, rejected.Error()
		}
		sum.Objects++
		sum.Decisions[Words(res.Decision)]++
		if res.Reason != "" {
			for _, rs := range strings.Split(res.Reason, ",") {
				sum.Reasons[rs]++
			}
		}
		out = append(out, res)
	}
	return out, sum, nil
}

func (r *Result) fill(d *policy.Decision) {
	r.SHA256 = fmt.Sprintf("%x", d.OriginalSHA256)
	r.Detail = d.Detail
	switch d.Action {
	case policy.Publish:
		r.Decision = DecisionPublish
	case policy.PublishRedacted:
		r.Decision = DecisionPublishRedacted
	default:
		r.Decision = DecisionWithhold
	}
	if d.Reason != "" {
		r.Reason = string(d.Reason)
	}
	var reasons []string
	for _, x := range d.Removed {
		r.Removed = append(r.Removed, Removal{Path: x.Path, Reason: string(x.Reason), Detail: x.Detail})
		if !slices.Contains(reasons, string(x.Reason)) {
			reasons = append(reasons, string(x.Reason))
		}
	}
	if r.Reason == "" && len(reasons) > 0 {
		r.Reason = strings.Join(reasons, ",")
	}
}
