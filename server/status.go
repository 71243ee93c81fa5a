package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

type statusResource struct {
	ID               string          `json:"id"`
	Status           string          `json:"status"`
	RequestTimestamp string          `json:"request_timestamp,omitempty"`
	TotalCount       int             `json:"total_count"`
	SuccessCount     int             `json:"success_count"`
	Successes        []statusDetails `json:"successes,omitempty"`
	FailureCount     int             `json:"failure_count"`
	Failures         []statusDetails `json:"failures,omitempty"`
	PendingCount     int             `json:"pending_count"`
	Pendings         []statusDetails `json:"pendings,omitempty"`
}

type statusDetails struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

func statusOf(st store.Status) statusResource {
	details := func(ds []store.StatusDetail) []statusDetails {
		if len(ds) == 0 {
			return nil
		}
		out := make([]statusDetails, len(ds))
		for i, d := range ds {
			out[i] = statusDetails(d)
		}
		return out
	}
	r := statusResource{
		ID:           st.ID,
		Status:       st.Status,
		TotalCount:   st.TotalCount,
		SuccessCount: len(st.Successes),
		Successes:    details(st.Successes),
		// The failures listed are bounded (gateway.MaxListedFailures);
		// the count is exact: every object is a success, a failure or
		// pending.
		FailureCount: max(len(st.Failures), st.TotalCount-len(st.Successes)-len(st.Pendings)),
		Failures:     details(st.Failures),
		PendingCount: len(st.Pendings),
		Pendings:     details(st.Pendings),
	}
	if !st.RequestTimestamp.IsZero() {
		r.RequestTimestamp = formatDateAdded(st.RequestTimestamp)
	}
	return r
}

var errNoStatus = ctigate.E("server", ctigate.NotFound, "no such status")

// getStatus serves GET /{api-root}/status/{status-id}/ (TAXII 2.1 §4.3).
// A status is visible to the user who made the request and to writers of
// its collection; to anyone else it does not exist.
func (s *Server) getStatus(c echo.Context) error {
	r, err := s.apiRoot(c)
	if err != nil {
		return err
	}
	st, err := s.store.Status(c.Request().Context(), c.Param("status"))
	if ctigate.KindOf(err) == ctigate.NotFound {
		return errNoStatus
	}
	if err != nil {
		return err
	}
	if st.APIRoot != r.cfg.Name {
		return errNoStatus
	}
	u := userOf(c)
	if st.Owner != u.Name {
		col := r.byKey[st.Collection]
		if col == nil || !s.viewOf(c).access.CanWrite(u, col.cfg.ID) {
			return errNoStatus
		}
	}
	return writeJSON(c, http.StatusOK, statusOf(st))
}
