package fhir

import (
	"context"
	"strconv"
	"time"
)

// Written is one version a store has just written, reported to the Recorder
// of the write's context inside the write's database transaction.
type Written struct {
	// Resource is the version written; Body is nil for a deletion.
	Resource Resource
	Method   Method
	// Created is set when the version created the resource (or brought a
	// deleted one back).
	Created bool
}

// Record is what a Recorder asks the store to write with a version, in the
// same database transaction: if that transaction rolls back, neither is
// kept.
type Record struct {
	// Provenance, when not nil, is stored as a new Provenance resource
	// whose id the store assigns. Index is honoured as for any write.
	Provenance *Write
	// Audit, when not nil, is appended to the audit trail.
	Audit *AuditEvent
}

// Recorder is told of every version a store writes, so that the Provenance
// and the audit record of a write are stored with it and no write path can
// forget them. A store calls Record once per version, after the version and
// its index rows are in place and before its transaction commits; it is never
// called for a Provenance itself. An error from Record fails the write.
type Recorder interface {
	Record(ctx context.Context, w Written) (Record, error)
}

type recorderKey struct{}

// WithRecorder returns ctx carrying r, the Recorder of the interaction ctx
// belongs to. A nil r leaves ctx as it is.
func WithRecorder(ctx context.Context, r Recorder) context.Context {
	if r == nil {
		return ctx
	}
	return context.WithValue(ctx, recorderKey{}, r)
}

// RecorderFrom returns the Recorder of ctx, or nil when it has none (the
// server's own work: installers, reindexing, tests of the store).
func RecorderFrom(ctx context.Context) Recorder {
	r, _ := ctx.Value(recorderKey{}).(Recorder)
	return r
}

// Entity is a resource an audit record is about: Version 0 names the
// resource without a version.
type Entity struct {
	Type, ID string
	Version  int64
}

// Reference returns Type/ID, or Type/ID/_history/Version.
func (e Entity) Reference() string {
	if e.Version > 0 {
		return e.Type + "/" + e.ID + "/_history/" + strconv.FormatInt(e.Version, 10)
	}
	return e.Type + "/" + e.ID
}

// AuditEvent is one record of the audit trail: the columns a store searches
// on, and Render, which produces the AuditEvent resource once the store knows
// every patient the event concerns (those in Patients and those it finds
// behind Entities).
type AuditEvent struct {
	// ID is the AuditEvent's logical id, chosen by the caller.
	ID       string
	Recorded time.Time
	// Type and Subtype are codes of the audit-event-type and
	// restful-interaction code systems ("rest", "read").
	Type, Subtype string
	// Action is C, R, U, D or E; Outcome 0, 4 or 8.
	Action, Outcome string
	// Agents are who acted: references (Person/1) and identifiers
	// (system|value), as AuditEvent?agent= matches them.
	Agents []string
	// Entities are the resources the event is about.
	Entities []Entity
	// Patients are patients the event is known to concern (Patient/1),
	// before the store adds those the Entities refer to.
	Patients []string
	// Render returns the AuditEvent resource's JSON for the complete list
	// of patients (sorted references, Patient/1).
	Render func(patients []string) ([]byte, error)
}

// AuditLog stores the audit records of interactions that write nothing
// (reads, searches, history, refused requests) apart from the request:
// Append queues the event and returns, waiting while the queue is full; an
// event is never dropped. Implementations are safe for concurrent use.
type AuditLog interface {
	Append(e AuditEvent)
}
