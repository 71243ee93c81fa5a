package config

import "strings"

// minimalYAML is the smallest valid configuration: one API root with one
// collection, one user reading it; tests append what they examine.
var minimalYAML = `
api_roots:
  - name: exchange
    title: X
    collections:
      - id: 24f70a31-7be5-4fdd-8353-9784877646c1
        title: In
        readers: [u1]
users:
  - name: u1
    organisation: O
    token_sha256: [` + strings.Repeat("a", 64) + `]
`
