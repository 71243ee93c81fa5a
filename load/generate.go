package load

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	stix2 "github.com/TcM1911/stix2"
)

// envelope is one pre-serialised TAXII envelope.
type envelope struct {
	body    []byte
	objects int
	red     int // objects marked TLP:RED, which no route publishes
}

// The producer every generated indicator names in created_by_ref: CERT-A
// of the demo topology (a fixed id, so a store built in several runs has
// one author).
const benchIdentity stix2.Identifier = "identity--6a3e5b2c-0c2d-5d0e-9d1c-3f0f7b3a2c41"

// benchIdentityJSON is that identity, TLP:CLEAR: the first object of the
// first envelope, as a producer sends the identity its objects name (a
// route publishes it, so the indicators keep their created_by_ref).
const benchIdentityJSON = `{"type":"identity","spec_version":"2.1","id":"` + string(benchIdentity) + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
	`"name":"CERT-A","identity_class":"organization","sectors":["government-national"],"object_marking_refs":["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"]}`

// TLP marking definitions (the fixed ids of TLP 2.0 and TLP 1.0), with the
// share of generated indicators that carry each, in percent. Most CSIRT
// output is GREEN or AMBER; some producers still send TLP 1.0.
var tlpMix = []struct {
	id      stix2.Identifier
	percent int
}{
	{"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", 10}, // TLP:CLEAR
	{"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", 37}, // TLP:GREEN
	{"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", 33}, // TLP:AMBER
	{"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", 5},  // TLP:AMBER+STRICT
	{"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", 5},  // TLP:RED
	{"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", 5},  // TLP 1.0 GREEN
	{"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", 5},  // TLP 1.0 AMBER
}

const tlpRed stix2.Identifier = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"

var families = []string{"QakBot", "Emotet", "IcedID", "Cobalt Strike", "AgentTesla", "LockBit", "DarkGate", "Raccoon Stealer", "Pikabot", "SocGholish"}

var domainWords = []string{"secure", "login", "update", "account", "verify", "portal", "cloud", "mail", "support", "billing", "office", "docs", "auth", "service", "online", "bank"}

// generate builds n objects (the producer's identity, then indicators) in
// envelopes of b objects, serialised, using
// workers goroutines. Ids are random UUIDv4 (stix2.NewIdentifier), so
// they are distinct across runs too.
func generate(ctx context.Context, n, b, workers int) ([]envelope, error) {
	envs := make([]envelope, (n+b-1)/b)
	now := time.Now().UTC().Truncate(time.Millisecond)
	seed := rand.Uint64()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	for w := range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &generator{rng: rand.New(rand.NewPCG(seed, uint64(w))), now: now}
			for {
				e := int(next.Add(1) - 1)
				if e >= len(envs) || ctx.Err() != nil {
					return
				}
				count := min(b, n-e*b)
				red := g.red
				body, err := g.envelope(count, e == 0)
				if err != nil {
					mu.Lock()
					ferr = err
					mu.Unlock()
					return
				}
				envs[e] = envelope{body: body, objects: count, red: g.red - red}
			}
		}()
	}
	wg.Wait()
	if ferr != nil {
		return nil, ferr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return envs, nil
}

// generator makes indicators; one per goroutine.
type generator struct {
	red int // TLP:RED indicators made so far
	rng *rand.Rand
	now time.Time
}

// envelope returns an envelope of count objects: indicators, after the
// producer's identity when first.
func (g *generator) envelope(count int, first bool) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, 16+count*560))
	buf.WriteString(`{"objects":[`)
	start := 0
	if first && count > 0 {
		buf.WriteString(benchIdentityJSON)
		start = 1
	}
	for i := start; i < count; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		obj, err := g.indicator()
		if err != nil {
			return nil, err
		}
		buf.Write(obj)
	}
	buf.WriteString(`]}`)
	return buf.Bytes(), nil
}

// indicator returns one realistic indicator serialised by stix2: an IPv4
// address, domain, URL or file hash pattern with a name, labels, a TLP
// marking, the producer's identity and sometimes a description; about 520
// bytes on average (stix2 adds "revoked":false to every object).
func (g *generator) indicator() ([]byte, error) {
	r := g.rng
	created := g.now.Add(-time.Duration(r.Int64N(int64(24 * time.Hour)))).Truncate(time.Millisecond)
	validFrom := created.Add(-time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Millisecond)
	family := families[r.IntN(len(families))]
	incident := fmt.Sprintf("CERT-A-%d-%05d", created.Year(), r.IntN(100000))

	// Names always, descriptions on one in five, as in typical CSIRT feeds.
	var pattern, name, desc string
	var labels []string
	withDesc := r.IntN(5) == 0
	switch k := r.IntN(100); {
	case k < 45:
		ip := g.ipv4()
		pattern = "[ipv4-addr:value = '" + ip + "']"
		name = "C2 " + ip
		desc = family + " C2 reported in incident " + incident + "."
		labels = []string{"c2"}
	case k < 75:
		d := g.domain()
		pattern = "[domain-name:value = '" + d + "']"
		name = "Phishing " + d
		desc = "Bank login phishing, incident " + incident + "."
		labels = []string{"phishing"}
	case k < 85:
		d := g.domain()
		pattern = "[url:value = 'https://" + d + "/" + strconv.Itoa(r.IntN(1e6)) + ".zip']"
		name = family + " download URL"
		desc = "Delivers " + family + ", incident " + incident + "."
		labels = []string{"malware-distribution"}
	default:
		// Hashes as CSIRTs report them: MD5, SHA-1 or SHA-256.
		var h [32]byte
		for i := 0; i < len(h); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				h[i+j] = byte(v >> (8 * j))
			}
		}
		switch k := r.IntN(10); {
		case k < 4:
			pattern = "[file:hashes.MD5 = '" + hex.EncodeToString(h[:16]) + "']"
		case k < 6:
			pattern = "[file:hashes.'SHA-1' = '" + hex.EncodeToString(h[:20]) + "']"
		default:
			pattern = "[file:hashes.'SHA-256' = '" + hex.EncodeToString(h[:]) + "']"
		}
		name = family + " sample"
		desc = family + " payload from incident " + incident + "."
		labels = []string{"malware"}
	}

	ind, err := stix2.NewIndicator(pattern, stix2.PatternTypeSTIX, &stix2.Timestamp{Time: validFrom})
	if err != nil {
		return nil, fmt.Errorf("generating an indicator: %w", err)
	}
	// Fields set directly rather than through stix2's options, which find
	// them by reflection on every call: this halves generation time.
	ts := &stix2.Timestamp{Time: created}
	ind.Created, ind.Modified = ts, ts
	ind.Name = name
	if withDesc {
		ind.Description = desc
	}
	ind.Labels = labels
	ind.CreatedBy = benchIdentity
	tlp := g.tlp()
	if tlp == tlpRed {
		g.red++
	}
	ind.ObjectMarking = []stix2.Identifier{tlp}
	b, err := ind.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("serialising an indicator: %w", err)
	}
	return b, nil
}

// ipv4 returns an address in 198.18.0.0/15, the range set aside for
// benchmarks (RFC 2544), so no real host is named as malicious.
func (g *generator) ipv4() string {
	v := g.rng.Uint32N(1 << 17)
	return "198." + strconv.Itoa(18+int(v>>16)) + "." + strconv.Itoa(int(v>>8&0xff)) + "." + strconv.Itoa(int(v&0xff))
}

// domain returns a name under a reserved top-level domain (RFC 2606).
func (g *generator) domain() string {
	r := g.rng
	tld := [...]string{"example", "test"}[r.IntN(2)]
	return domainWords[r.IntN(len(domainWords))] + "-" + domainWords[r.IntN(len(domainWords))] + strconv.Itoa(r.IntN(1000)) + "." + tld
}

func (g *generator) tlp() stix2.Identifier {
	k := g.rng.IntN(100)
	for _, m := range tlpMix {
		if k < m.percent {
			return m.id
		}
		k -= m.percent
	}
	return tlpMix[1].id
}

// maxEnvelopeBytes is the size of the largest envelope.
func maxEnvelopeBytes(envs []envelope) int64 {
	var m int
	for _, e := range envs {
		m = max(m, len(e.body))
	}
	return int64(m)
}

// summarise describes generated data.
func summarise(envs []envelope, took time.Duration) *GenerateResult {
	g := &GenerateResult{Envelopes: len(envs), Seconds: took.Seconds()}
	for _, e := range envs {
		g.Objects += e.objects
		g.Bytes += int64(len(e.body))
	}
	if g.Objects > 0 {
		// Envelope overhead: `{"objects":[` `]}` and the commas.
		payload := g.Bytes - int64(len(envs))*14 - int64(g.Objects-len(envs))
		g.AvgObjectBytes = float64(payload) / float64(g.Objects)
	}
	return g
}
