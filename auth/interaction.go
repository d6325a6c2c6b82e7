package auth

// Interaction is a FHIR RESTful interaction (http://hl7.org/fhir/R4/http.html),
// as the access decision sees it. Bundles are not interactions here: each
// entry of a transaction or batch is decided as the interaction it carries.
type Interaction string

// The interactions the access decision knows. A route of the REST API names
// one of them; a route that names none is served without a decision (only
// the CapabilityStatement).
const (
	Read            Interaction = "read"
	VRead           Interaction = "vread"
	HistoryInstance Interaction = "history-instance"
	HistoryType     Interaction = "history-type"
	HistorySystem   Interaction = "history-system"
	SearchType      Interaction = "search-type"
	SearchSystem    Interaction = "search-system"
	Create          Interaction = "create"
	Update          Interaction = "update"
	Patch           Interaction = "patch"
	Delete          Interaction = "delete"
	// Operation is an extended operation ($validate, ...) on a type or the
	// whole system.
	Operation Interaction = "operation"
)

// Write reports whether in changes data.
func (in Interaction) Write() bool {
	switch in {
	case Create, Update, Patch, Delete:
		return true
	}
	return false
}
