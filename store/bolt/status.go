package bolt

import (
	"context"
	"encoding/json"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// statusRecord is the stored form of a store.Status. Its field names are
// part of the file format.
type statusRecord struct {
	ID               string         `json:"id"`
	APIRoot          string         `json:"api_root"`
	Collection       string         `json:"collection"`
	Owner            string         `json:"owner"`
	Status           string         `json:"status"`
	RequestTimestamp time.Time      `json:"request_timestamp"`
	TotalCount       int            `json:"total_count"`
	Successes        []detailRecord `json:"successes,omitempty"`
	Failures         []detailRecord `json:"failures,omitempty"`
	Pendings         []detailRecord `json:"pendings,omitempty"`
}

type detailRecord struct {
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
	Message string `json:"message,omitempty"`
}

func toDetailRecords(ds []store.StatusDetail) []detailRecord {
	if ds == nil {
		return nil
	}
	out := make([]detailRecord, len(ds))
	for i, d := range ds {
		out[i] = detailRecord(d)
	}
	return out
}

func fromDetailRecords(ds []detailRecord) []store.StatusDetail {
	if ds == nil {
		return nil
	}
	out := make([]store.StatusDetail, len(ds))
	for i, d := range ds {
		out[i] = store.StatusDetail(d)
	}
	return out
}

// PutStatus creates or replaces a status resource.
func (s *Store) PutStatus(ctx context.Context, st store.Status) error {
	const op = "bolt.PutStatus"
	if st.ID == "" || len(st.ID) > maxIDLen {
		return ctigate.E(op, ctigate.Invalid, "bad status id")
	}
	b, err := json.Marshal(statusRecord{
		ID:               st.ID,
		APIRoot:          st.APIRoot,
		Collection:       st.Collection,
		Owner:            st.Owner,
		Status:           st.Status,
		RequestTimestamp: st.RequestTimestamp.UTC(),
		TotalCount:       st.TotalCount,
		Successes:        toDetailRecords(st.Successes),
		Failures:         toDetailRecords(st.Failures),
		Pendings:         toDetailRecords(st.Pendings),
	})
	if err != nil {
		return ctigate.E(op, err)
	}
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	err = s.update(1, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketStatuses).Put([]byte(st.ID), b)
	})
	if err != nil {
		return ctigate.E(op, err)
	}
	return nil
}

// Status returns a status resource; ctigate.NotFound if there is none.
func (s *Store) Status(ctx context.Context, id string) (store.Status, error) {
	const op = "bolt.Status"
	if err := s.enter(op); err != nil {
		return store.Status{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.Status{}, ctxErr(op, err)
	}
	var rec statusRecord
	found := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketStatuses).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &rec)
	})
	if err != nil {
		return store.Status{}, ctigate.E(op, err)
	}
	if !found {
		return store.Status{}, ctigate.E(op, ctigate.NotFound, "no such status")
	}
	return store.Status{
		ID:               rec.ID,
		APIRoot:          rec.APIRoot,
		Collection:       rec.Collection,
		Owner:            rec.Owner,
		Status:           rec.Status,
		RequestTimestamp: rec.RequestTimestamp.UTC(),
		TotalCount:       rec.TotalCount,
		Successes:        fromDetailRecords(rec.Successes),
		Failures:         fromDetailRecords(rec.Failures),
		Pendings:         fromDetailRecords(rec.Pendings),
	}, nil
}
