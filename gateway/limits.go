package gateway

import (
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/stix"
)

// IngestLimits are the bounds cfg sets on one posted object, with the
// settings their refusals name.
func IngestLimits(cfg *config.Config) stix.Limits {
	return stix.Limits{MaxPatternBytes: cfg.Ingest.MaxPatternBytes, MaxPatternBytesKey: "ingest.max_pattern_bytes"}
}
