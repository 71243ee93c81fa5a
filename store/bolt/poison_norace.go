//go:build !race

package bolt

// poisonReleased: see pageReader.release.
const poisonReleased = false
