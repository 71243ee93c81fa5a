package stix

import (
	"fmt"
	"strings"
)

// TLP is a Traffic Light Protocol level, normalised to TLP 2.0. The levels
// are ordered from the least to the most restrictive:
//
//	TLPClear < TLPGreen < TLPAmber < TLPAmberStrict < TLPRed
//
// TLP 1.0 WHITE is TLPClear; TLP 1.0 GREEN, AMBER and RED are the TLP 2.0
// levels of the same name.
//
// The zero value, TLPNone, means "no TLP level": the object carries no TLP
// marking (or only markings the gateway does not know). It is not a level
// and sorts below TLPClear only numerically: compare levels with Within,
// which never lets TLPNone through, rather than with <.
type TLP uint8

// The TLP levels.
const (
	TLPNone        TLP = iota // no TLP marking: the route's rule for unmarked objects applies
	TLPClear                  // TLP:CLEAR (TLP 1.0 TLP:WHITE)
	TLPGreen                  // TLP:GREEN
	TLPAmber                  // TLP:AMBER
	TLPAmberStrict            // TLP:AMBER+STRICT (TLP 2.0 only)
	TLPRed                    // TLP:RED
)

var tlpNames = [...]string{
	TLPNone:        "TLP:none",
	TLPClear:       "TLP:CLEAR",
	TLPGreen:       "TLP:GREEN",
	TLPAmber:       "TLP:AMBER",
	TLPAmberStrict: "TLP:AMBER+STRICT",
	TLPRed:         "TLP:RED",
}

// String returns the TLP 2.0 label, such as "TLP:AMBER+STRICT", or
// "TLP:none" for TLPNone.
func (t TLP) String() string {
	if int(t) < len(tlpNames) {
		return tlpNames[t]
	}
	return fmt.Sprintf("TLP(%d)", uint8(t))
}

// Known reports whether t is one of the five TLP levels.
func (t TLP) Known() bool { return TLPClear <= t && t <= TLPRed }

// Within reports whether content at level t may go where ceiling is the
// most restrictive level allowed. It is false when either is not a known
// level: TLPNone is never within any ceiling.
func (t TLP) Within(ceiling TLP) bool {
	return t.Known() && ceiling.Known() && t <= ceiling
}

// ParseTLP parses a TLP label: "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER",
// "TLP:AMBER+STRICT" or "TLP:RED", with or without the "TLP:" prefix, in
// any case; TLP 1.0 "WHITE" is CLEAR, and "none" is TLPNone.
func ParseTLP(s string) (TLP, error) {
	label := strings.ToLower(strings.TrimSpace(s))
	label = strings.TrimPrefix(label, "tlp:")
	switch label {
	case "clear", "white":
		return TLPClear, nil
	case "green":
		return TLPGreen, nil
	case "amber":
		return TLPAmber, nil
	case "amber+strict":
		return TLPAmberStrict, nil
	case "red":
		return TLPRed, nil
	case "none":
		return TLPNone, nil
	}
	return TLPNone, fmt.Errorf("stix: unknown TLP level %q: want TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT or TLP:RED", s)
}

// MarshalText returns the label String returns.
func (t TLP) MarshalText() ([]byte, error) {
	if int(t) >= len(tlpNames) {
		return nil, fmt.Errorf("stix: invalid TLP value %d", uint8(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses a label as ParseTLP does.
func (t *TLP) UnmarshalText(text []byte) error {
	v, err := ParseTLP(string(text))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// The ids of the standard TLP marking definitions: TLP 1.0 (STIX 2.1
// §7.2.1.4) and TLP 2.0 (the OASIS marking definitions of the extension
// extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d). They are
// fixed: no other marking definition may stand for a TLP level.
const (
	TLP1White = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
	TLP1Green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	TLP1Amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	TLP1Red   = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"

	TLP2Clear       = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
	TLP2Green       = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	TLP2Amber       = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	TLP2AmberStrict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
	TLP2Red         = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
)

// MarkingID returns the id of t's TLP 2.0 marking definition ("" for
// TLPNone).
func (t TLP) MarkingID() string {
	switch t {
	case TLPClear:
		return TLP2Clear
	case TLPGreen:
		return TLP2Green
	case TLPAmber:
		return TLP2Amber
	case TLPAmberStrict:
		return TLP2AmberStrict
	case TLPRed:
		return TLP2Red
	}
	return ""
}

// markingTLP2Extension is the id of the TLP 2.0 extension definition
// (validation and marking resolution both use it).
const markingTLP2Extension = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

// StandardTLP returns the TLP level of a standard TLP 1.0 or 2.0 marking
// definition id, normalised to TLP 2.0, and whether id is one. The UUID may
// be written in either case, as RFC 4122 reads UUIDs: an upper-case
// spelling of TLP:RED's id must not escape being RED.
func StandardTLP(id string) (TLP, bool) {
	return standardTLP([]byte(id))
}

// standardTLP is StandardTLP for a byte slice (it does not allocate).
func standardTLP(id []byte) (TLP, bool) {
	if t, ok := standardTLPExact(id); ok {
		return t, true
	}
	const n, prefix = len(TLP1White), len("marking-definition--")
	if len(id) != n {
		return TLPNone, false
	}
	var lower [n]byte
	upper := false
	for i, c := range id {
		if i >= prefix && 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
			upper = true
		}
		lower[i] = c
	}
	if !upper {
		return TLPNone, false
	}
	return standardTLPExact(lower[:])
}

// standardTLPExact is standardTLP for ids written in lowercase.
func standardTLPExact(id []byte) (TLP, bool) {
	switch string(id) {
	case TLP1White, TLP2Clear:
		return TLPClear, true
	case TLP1Green, TLP2Green:
		return TLPGreen, true
	case TLP1Amber, TLP2Amber:
		return TLPAmber, true
	case TLP2AmberStrict:
		return TLPAmberStrict, true
	case TLP1Red, TLP2Red:
		return TLPRed, true
	}
	return TLPNone, false
}

// standardDefinition returns the standard TLP marking definition id, in
// RFC 8785 canonical form: TLP 1.0 as STIX 2.1 §7.2.1.4 and
// cti-python-stix2 define it, TLP 2.0 as OASIS cti-stix-common-objects
// publishes it. The tests check them against the published files.
func standardDefinition(id string) (MarkingDefinition, bool) {
	switch id {
	case TLP1White:
		return tlp1Definition(TLP1White, "WHITE", "white", TLPClear), true
	case TLP1Green:
		return tlp1Definition(TLP1Green, "GREEN", "green", TLPGreen), true
	case TLP1Amber:
		return tlp1Definition(TLP1Amber, "AMBER", "amber", TLPAmber), true
	case TLP1Red:
		return tlp1Definition(TLP1Red, "RED", "red", TLPRed), true
	case TLP2Clear:
		return tlp2Definition(TLP2Clear, "CLEAR", "clear", TLPClear), true
	case TLP2Green:
		return tlp2Definition(TLP2Green, "GREEN", "green", TLPGreen), true
	case TLP2Amber:
		return tlp2Definition(TLP2Amber, "AMBER", "amber", TLPAmber), true
	case TLP2AmberStrict:
		return tlp2Definition(TLP2AmberStrict, "AMBER+STRICT", "amber+strict", TLPAmberStrict), true
	case TLP2Red:
		return tlp2Definition(TLP2Red, "RED", "red", TLPRed), true
	}
	return MarkingDefinition{}, false
}

func tlp1Definition(id, name, level string, t TLP) MarkingDefinition {
	return MarkingDefinition{
		ID:   id,
		Kind: TLPMarking,
		TLP:  t,
		Name: "TLP:" + name,
		Canonical: `{"created":"2017-01-20T00:00:00.000Z","definition":{"tlp":"` + level + `"},` +
			`"definition_type":"tlp","id":"` + id + `","name":"TLP:` + name + `",` +
			`"spec_version":"2.1","type":"marking-definition"}`,
	}
}

func tlp2Definition(id, name, level string, t TLP) MarkingDefinition {
	return MarkingDefinition{
		ID:   id,
		Kind: TLPMarking,
		TLP:  t,
		Name: "TLP:" + name,
		Canonical: `{"created":"2022-10-01T00:00:00.000Z","extensions":{"` + markingTLP2Extension + `":` +
			`{"extension_type":"property-extension","tlp_2_0":"` + level + `"}},` +
			`"id":"` + id + `","name":"TLP:` + name + `","spec_version":"2.1","type":"marking-definition"}`,
	}
}
