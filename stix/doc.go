// Package stix decodes TAXII 2.1 envelopes and strictly validates the STIX
// 2.1 objects in them, keeping each object's original bytes and doing no I/O.
package stix
