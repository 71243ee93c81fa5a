package server

import (
	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/gateway"
)

// When the storage is full. Every write is atomic, so a request refused
// for want of space stored nothing (errors.go answers it 507 with
// Retry-After). Two cases need more than that answer:
//
//   - A POST whose objects were stored but whose records after them (the
//     status resource, the ledger entries of conflicts) were not is a
//     success: its answer lists the objects it stored (noteUnrecorded).
//   - A read is recorded as delivered in the custody ledger before it is
//     served, and nothing is served without its record: a read whose
//     record cannot be written is refused, saying why (undelivered).

// unrecordedDelivery is the description of a read refused because its
// delivery could not be recorded.
const unrecordedDelivery = "the gateway's storage is full: the delivery of this page could not be recorded in the custody ledger, " +
	"and nothing is served without its record. Retry once an operator has freed space"

// undelivered is the error of a read whose delivery could not be recorded
// because of err.
func undelivered(err error) error {
	if ctigate.KindOf(err) == ctigate.Full {
		return ctigate.E("server.recordDelivery", ctigate.Full, err, unrecordedDelivery)
	}
	return err
}

// noteUnrecorded logs and counts what an ingest into col could not record
// after it stored the objects, if anything. The answer stands: the
// objects are stored, though the status resource it carries may not be
// readable later.
func (s *Server) noteUnrecorded(c echo.Context, col *collection, user string, out gateway.Outcome) {
	if out.Unrecorded == nil {
		return
	}
	ctx := c.Request().Context()
	s.metrics.StoreError(ctx, out.Failed)
	s.log.ErrorContext(ctx, "objects stored, but their status or ledger record could not be written", "collection", col.cfg.ID,
		"status_id", out.Status.ID, "user", user, "stored", len(out.Status.Successes), "err", out.Unrecorded)
}
