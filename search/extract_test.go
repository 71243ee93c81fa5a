package search

import (
	"slices"
	"testing"
)

func keys(obs []Observable) []string {
	var out []string
	for _, o := range obs {
		out = append(out, o.Class+"|"+o.Value)
	}
	slices.Sort(out)
	return out
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name, raw string
		want      []string
	}{
		{"cidr pattern", `{"type":"indicator","pattern_type":"stix","pattern":"[ipv4-addr:value = '198.51.100.7/24']"}`,
			[]string{"ipv4/24|198.51.100.0"}},
		{"address, ipv6, IN set", `{"type":"indicator","pattern_type":"stix","pattern":"[ipv4-addr:value IN ('10.0.0.1', '10.0.0.2') OR ipv6-addr:value = '2001:DB8::1']"}`,
			[]string{"ipv4/32|10.0.0.1", "ipv4/32|10.0.0.2", "ipv6/128|2001:db8::1"}},
		{"url gives its host", `{"type":"indicator","pattern_type":"stix","pattern":"[url:value = 'HTTP://Evil.Example./Path?A=B']"}`,
			[]string{"domain|evil.example", "url|http://evil.example./Path?A=B"}},
		{"url with an address host", `{"type":"indicator","pattern_type":"stix","pattern":"[url:value = 'https://192.0.2.1:8443/x']"}`,
			[]string{"ipv4/32|192.0.2.1", "url|https://192.0.2.1:8443/x"}},
		{"hashes", `{"type":"indicator","pattern_type":"stix","pattern":"[file:hashes.'SHA-256' = 'AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F' OR file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e' OR file:hashes.'SHA-1' = 'zz']"}`,
			[]string{"md5|d41d8cd98f00b204e9800998ecf8427e", "sha256|aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"}},
		{"negated and non-equality comparisons say nothing", `{"type":"indicator","pattern_type":"stix","pattern":"[domain-name:value != 'a.example' OR domain-name:value NOT = 'b.example' OR domain-name:value MATCHES 'c' OR domain-name:value = 'D.example']"}`,
			[]string{"domain|d.example"}},
		{"email message and network traffic", `{"type":"indicator","pattern_type":"stix","pattern":"[email-message:from_ref.value = 'Bad@X.example' AND email-message:to_refs[*].value = 'v@y.example'] OR [network-traffic:dst_ref.value ISSUBSET '203.0.113.0/25']"}`,
			[]string{"email|bad@x.example", "email|v@y.example", "ipv4/25|203.0.113.0"}},
		{"other pattern languages are not parsed", `{"type":"indicator","pattern_type":"snort","pattern":"alert ip 10.0.0.1 any"}`, nil},
		{"invalid pattern", `{"type":"indicator","pattern_type":"stix","pattern":"[ipv4-addr:value = "}`, nil},
		{"scos", `{"type":"ipv4-addr","value":"::ffff:192.0.2.9"}`, []string{"ipv4/32|192.0.2.9"}},
		{"file sco", `{"type":"file","hashes":{"SHA-1":"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709","x-custom":"1"}}`,
			[]string{"sha1|da39a3ee5e6b4b0d3255bfef95601890afd80709"}},
		{"observed-data objects", `{"type":"observed-data","objects":{"0":{"type":"domain-name","value":"od.example"},"1":{"type":"email-addr","value":"a@od.example"}}}`,
			[]string{"domain|od.example", "email|a@od.example"}},
		{"sdo", `{"type":"malware","name":"x","value":"1.2.3.4"}`, nil},
	}
	for _, tt := range tests {
		x, err := Extract([]byte(tt.raw))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := keys(x.Observables); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := Extract([]byte(`{"type":`)); err == nil {
		t.Error("Extract of broken JSON: no error")
	}
}

func TestParse(t *testing.T) {
	classes := []string{"domain", "ipv4/16", "ipv4/24", "ipv4/32", "ipv6/32", "ipv6/128", "sha256"}
	tests := []struct {
		in, kind, norm string
		keys           []string
	}{
		{"198.51.100.7", "ipv4", "198.51.100.7", []string{"ipv4/16|198.51.0.0", "ipv4/24|198.51.100.0", "ipv4/32|198.51.100.7"}},
		{" 198.51.100.0/24 ", "ipv4-network", "198.51.100.0/24", []string{"ipv4/16|198.51.0.0", "ipv4/24|198.51.100.0"}},
		{"2001:db8:0:0::1", "ipv6", "2001:db8::1", []string{"ipv6/32|2001:db8::", "ipv6/128|2001:db8::1"}},
		{"Evil.Example.", "domain", "evil.example", []string{"domain|evil.example"}},
		{"HTTPS://A.example/X", "url", "https://a.example/X", []string{"url|https://a.example/X"}},
		{"Bad@X.example", "email", "bad@x.example", []string{"email|bad@x.example"}},
		{"D41D8CD98F00B204E9800998ECF8427E", "md5", "d41d8cd98f00b204e9800998ecf8427e", []string{"md5|d41d8cd98f00b204e9800998ecf8427e"}},
	}
	for _, tt := range tests {
		kind, norm, ks, err := Parse(tt.in, classes)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		var got []string
		for _, k := range ks {
			got = append(got, k.Class+"|"+k.Value)
		}
		if kind != tt.kind || norm != tt.norm || !slices.Equal(got, tt.keys) {
			t.Errorf("Parse(%q) = %q, %q, %q; want %q, %q, %q", tt.in, kind, norm, got, tt.kind, tt.norm, tt.keys)
		}
	}
	for _, bad := range []string{"", "a b", "x/y", "\xf2", "a.example\xff"} {
		if _, _, _, err := Parse(bad, classes); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

func FuzzExtract(f *testing.F) {
	f.Add([]byte(`{"type":"indicator","pattern_type":"stix","pattern":"[url:value = 'http://x.example/']"}`))
	f.Add([]byte(`{"type":"observed-data","objects":{"0":{"type":"ipv6-addr","value":"::1/0"}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		x, err := Extract(raw)
		if err != nil {
			return
		}
		for _, o := range x.Observables {
			if o.Class == "" || o.Value == "" {
				t.Fatalf("empty key in %+v", o)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "::/0", "x.example", "http://x/", "a@b", "00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _, keys, err := Parse(s, []string{"ipv4/0", "ipv4/8", "ipv6/0", "ipv6/64", "ipv6/128"})
		if err == nil && len(keys) == 0 && !isIPQuery(s) {
			t.Fatalf("Parse(%q): no keys and no error", s)
		}
	})
}

func isIPQuery(s string) bool { _, ok := IP(s); return ok }
