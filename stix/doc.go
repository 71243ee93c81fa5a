// Package stix decodes TAXII 2.1 envelopes and strictly validates the STIX
// 2.1 objects in them, keeping each object's original bytes; it resolves
// objects' TLP and other markings and computes RFC 8785 canonical hashes.
// It does no I/O.
package stix
