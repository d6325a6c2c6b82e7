// Package fhir is the centre of the server: the stored form of a FHIR R4
// resource, the storage interface every other package works against, and the
// error vocabulary that the REST layer turns into OperationOutcomes.
//
// It depends on no HTTP, SQL or token code; those packages depend on it.
package fhir

import (
	"context"
	"strconv"
	"time"
)

// Resource is one version of a stored resource. Body is the canonical JSON
// the server wrote (meta.versionId and meta.lastUpdated included), so a read
// streams it without parsing; Body is nil for a deletion tombstone.
type Resource struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Deleted     bool
	Body        []byte
}

// ETag returns the weak entity tag of the version, W/"n".
func (r Resource) ETag() string { return `W/"` + strconv.FormatInt(r.VersionID, 10) + `"` }

// Meta is what the store decides about a version being written: its id,
// version number and time. The writer renders the body with these values.
type Meta struct {
	ID          string
	VersionID   int64
	LastUpdated time.Time
}

// RenderFunc produces the canonical JSON of a resource for the given meta. The
// store calls it once it knows the version number, inside the write; it may
// be called again if the write is retried.
type RenderFunc func(m Meta) ([]byte, error)

// Write is a create or update of one resource.
type Write struct {
	Type string
	// ID is the logical id. Empty on Create means "assign one".
	ID string
	// IfMatch, when non-zero, is the version the caller expects to be
	// current; the write fails with PreconditionFailed otherwise.
	IfMatch int64
	// Render produces the body once id, version and time are known.
	Render RenderFunc
	// Index holds the search index entries of the new version; nil writes
	// none.
	Index *Index
}

// Method says how a version came to be, as recorded in history.
type Method string

// The ways a version can be written; they are the Bundle.entry.request.method
// values of a history Bundle.
const (
	MethodCreate Method = "POST"
	MethodUpdate Method = "PUT"
	MethodDelete Method = "DELETE"
)

// Outcome is the result of a write: the version written and whether it
// created the resource (HTTP 201) or replaced an existing one (200).
type Outcome struct {
	Resource Resource
	Created  bool
	// Unchanged is set by Delete when the resource was already deleted (or
	// never existed) and no new version was written.
	Unchanged bool
}

// HistoryQuery selects versions for a history interaction. Type and ID narrow
// it to a type or an instance; both empty is the whole system.
type HistoryQuery struct {
	Type string
	ID   string
	// Since keeps versions written at or after this instant (zero: no bound).
	Since time.Time
	// AtStart and AtEnd, when AtEnd is non-zero, keep versions that were
	// current at some moment in [AtStart, AtEnd).
	AtStart, AtEnd time.Time
	// Count is the page size. Zero asks for no entries: History then only
	// checks that the instance exists and reports Total.
	Count int
	// Before is the paging cursor: only versions older than this change-log
	// position (0: from the newest).
	Before int64
}

// HistoryEntry is one version in a history page.
type HistoryEntry struct {
	Resource
	Method Method
	// Seq is the version's position in the change log; it is the cursor
	// for the next page.
	Seq int64
}

// HistoryPage is one page of a history interaction, newest first. Next is the
// cursor for the following page, 0 when this is the last one. Total is the
// number of matching versions when the store could count them cheaply, or -1.
type HistoryPage struct {
	Entries []HistoryEntry
	Next    int64
	Total   int64
}

// Store keeps resources and every version of them. Implementations are safe
// for concurrent use and keep no state that two server instances on the same
// database could disagree about.
//
// Errors are *Error values: NotFound for an unknown resource or version, Gone
// for a read of a deleted resource (the Error's Resource is not returned),
// PreconditionFailed when Write.IfMatch does not hold. Anything else is an
// Internal error wrapped with the operation.
type Store interface {
	// Create stores version 1 of a new resource with a server-assigned id.
	Create(ctx context.Context, w Write) (Outcome, error)
	// Update stores a new version of w.ID, creating the resource with
	// that id when it does not exist (update as create).
	Update(ctx context.Context, w Write) (Outcome, error)
	// Delete writes a tombstone version. Deleting a deleted or unknown
	// resource succeeds with Outcome.Unchanged and writes nothing.
	Delete(ctx context.Context, typ, id string, ifMatch int64) (Outcome, error)
	// Read returns the current version. A deleted resource answers with
	// a Gone error and, as the Resource, its tombstone (so callers can send its
	// ETag).
	Read(ctx context.Context, typ, id string) (Resource, error)
	// VRead returns one version; a tombstone version answers Gone.
	VRead(ctx context.Context, typ, id string, version int64) (Resource, error)
	// History returns one page of versions, newest first.
	History(ctx context.Context, q HistoryQuery) (HistoryPage, error)
	// Ping reports whether the store is reachable and migrated.
	Ping(ctx context.Context) error
}
