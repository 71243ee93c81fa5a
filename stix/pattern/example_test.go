package pattern_test

import (
	"errors"
	"fmt"

	"github.com/ctigate/ctigate/stix/pattern"
)

func Example() {
	p, err := pattern.Parse(`([file:hashes.'SHA-256' = 'aec0706…' OR file:hashes.'MD5' = 'cead3f77…'] ` +
		`FOLLOWEDBY [domain-name:value IN ('x.example','y.example')]) WITHIN 300 SECONDS`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p)
	for _, o := range p.Observables() {
		fmt.Println(o.Type, o.Path, o.Op, o.Values)
	}
	// Output:
	// ([file:hashes.'SHA-256' = 'aec0706…' OR file:hashes.MD5 = 'cead3f77…'] FOLLOWEDBY [domain-name:value IN ('x.example', 'y.example')]) WITHIN 300 SECONDS
	// file hashes.'SHA-256' = ['aec0706…']
	// file hashes.MD5 = ['cead3f77…']
	// domain-name value IN ['x.example' 'y.example']
}

func ExampleParse_error() {
	_, err := pattern.Parse(`[file:name = 'C:\Windows\evil.exe']`)
	fmt.Println(err)
	var e *pattern.Error
	if errors.As(err, &e) {
		fmt.Println(e.Offset, e.Msg)
	}
	// Output:
	// pattern: offset 16: invalid escape sequence \W in string literal: only \' and \\ are allowed
	// 16 invalid escape sequence \W in string literal: only \' and \\ are allowed
}
