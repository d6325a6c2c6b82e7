package mapping

// task is the JSON of the Task elements a change request uses, in R4 order.
type task struct {
	ResourceType   string          `json:"resourceType"`
	ID             string          `json:"id,omitempty"`
	Status         string          `json:"status"`
	StatusReason   codeableConcept `json:"statusReason,omitzero"`
	BusinessStatus codeableConcept `json:"businessStatus,omitzero"`
	Intent         string          `json:"intent"`
	Code           codeableConcept `json:"code,omitzero"`
	Focus          reference       `json:"focus,omitzero"`
	For            reference       `json:"for,omitzero"`
	AuthoredOn     string          `json:"authoredOn,omitempty"`
	Requester      reference       `json:"requester,omitzero"`
	Owner          reference       `json:"owner,omitzero"`
}

// changeRequestIntent: the Task asks the dossierhouder to decide, under the
// yearly contract that obliges them to; it is an order, not a suggestion.
const changeRequestIntent = "order"

// ChangeRequest is a change request (wijzigingsverzoek): the dossierhouder's
// task to approve or reject a proposal (a draft plan or agreement, a proposed
// goal or grant). It is carried by a Task with code approve-change whose
// focus is the proposal. While it waits its status is TaskRequested; once
// decided it is TaskCompleted with the Decision in Task.businessStatus; a
// proposer who withdraws cancels it (TaskCancelled).
type ChangeRequest struct {
	ID         string   // logical id; empty for a resource still to be created
	Status     string   // Task.status: TaskRequested, TaskCompleted, TaskCancelled…
	Decision   Decision // DecisionApproved or DecisionRejected once completed; empty before
	Reason     string   // why it was decided so (Task.statusReason.text); optional
	Focus      string   // the proposal: CarePlan/…, Goal/…, Consent/…
	For        string   // Patient/… or Group/… whose record changes; optional
	AuthoredOn string   // FHIR dateTime it was proposed
	Requester  string   // who proposed
	Owner      string   // the dossierhouder (Practitioner/… or PractitionerRole/…); optional until assigned
}

func (r ChangeRequest) check(c *checker) {
	c.id("Task.id", r.ID)
	c.oneOf("Task.status", r.Status, taskStatuses)
	switch {
	case r.Decision != "" && r.Decision != DecisionApproved && r.Decision != DecisionRejected:
		c.addf("Task.businessStatus", "%q is not a decision", r.Decision)
	case r.Decision != "" && r.Status != TaskCompleted:
		c.addf("Task.businessStatus", "a decision is recorded only on a completed change request")
	case r.Decision == "" && r.Status == TaskCompleted:
		c.addf("Task.businessStatus", "a completed change request records the decision")
	}
	c.required("Task.focus", r.Focus)
	if t := refType(r.Focus); t != "" {
		if _, ok := LifecycleOf(t); !ok {
			c.addf("Task.focus", "%q is not a kind of resource that is proposed and approved", r.Focus)
		}
	}
	c.ref("Task.focus", r.Focus)
	c.ref("Task.for", r.For, "Patient", "Group")
	c.dateTime("Task.authoredOn", r.AuthoredOn)
	c.ref("Task.requester", r.Requester, "Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Device")
	c.ref("Task.owner", r.Owner, "Practitioner", "PractitionerRole")
}

// ToFHIR returns r as a Task in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid when r breaks a domain rule (no focus, a focus that is not
// proposed and approved, unknown status, a decision without completion or
// the reverse, malformed dates or references).
func (r ChangeRequest) ToFHIR() ([]byte, error) {
	out := task{
		ResourceType: "Task",
		ID:           r.ID,
		Status:       r.Status,
		StatusReason: codeableConcept{Text: r.Reason},
		Intent:       changeRequestIntent,
		Code:         codeableConcept{Coding: []Coding{TaskApproveChange.Coding()}},
		Focus:        ref(r.Focus),
		For:          ref(r.For),
		AuthoredOn:   r.AuthoredOn,
		Requester:    ref(r.Requester),
		Owner:        ref(r.Owner),
	}
	if r.Decision != "" {
		out.BusinessStatus = codeableConcept{Coding: []Coding{r.Decision.Coding()}}
	}
	return produce("change request to FHIR", r.check, out)
}

// ChangeRequestFromFHIR reads a change request from a Task in FHIR R4 JSON.
// Elements the domain does not carry are ignored. It returns an error of
// kind fhir.Invalid when b is not a Task with code approve-change and intent
// order, or breaks a rule of ChangeRequest.ToFHIR.
func ChangeRequestFromFHIR(b []byte) (ChangeRequest, error) {
	var in task
	if err := decode(b, "Task", &in); err != nil {
		return ChangeRequest{}, wrap("change request from FHIR", err)
	}
	var c checker
	if !hasCoding(in.Code.Coding, TaskApproveChange.Coding()) {
		c.addf("Task.code", "the Task is not a change request (no code %s|%s)", TaskCodeSystem, TaskApproveChange)
	}
	if in.Intent != changeRequestIntent {
		c.addf("Task.intent", "intent is %q; a change request has intent %q", in.Intent, changeRequestIntent)
	}
	r := ChangeRequest{
		ID:         in.ID,
		Status:     in.Status,
		Decision:   Decision(codeIn(&c, "Task.businessStatus", DecisionSystem, in.BusinessStatus.Coding)),
		Reason:     in.StatusReason.Text,
		Focus:      in.Focus.Reference,
		For:        in.For.Reference,
		AuthoredOn: in.AuthoredOn,
		Requester:  in.Requester.Reference,
		Owner:      in.Owner.Reference,
	}
	return checked("change request from FHIR", &c, r, ChangeRequest.check)
}
