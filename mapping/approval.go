package mapping

import "slices"

// The status values the approval workflow uses. A proposal is stored in its
// proposed status with an approve-change Task for the dossierhouder;
// approval makes it active and, where it replaces an earlier version, ends
// that one. Nothing is overwritten in place.
const (
	// CarePlan.status (plans and agreements).
	PlanDraft     = "draft"     // proposed, awaiting the dossierhouder
	PlanActive    = "active"    // approved, in force
	PlanRevoked   = "revoked"   // rejected, or replaced by an approved newer version
	PlanCompleted = "completed" // its period ended
	// Goal.lifecycleStatus.
	GoalProposed = "proposed"
	GoalActive   = "active"
	GoalRejected = "rejected"
	// Consent.status (grants).
	ConsentProposed = "proposed"
	ConsentActive   = "active"
	ConsentRejected = "rejected"
	ConsentInactive = "inactive" // revoked, expired or replaced
	// Task.status of a change request.
	TaskRequested = "requested" // awaiting the dossierhouder
	TaskCompleted = "completed" // decided; the decision is in Task.businessStatus
	TaskCancelled = "cancelled" // withdrawn by the proposer
)

// Lifecycle is how a resource type that needs approval moves through the
// workflow: the status a proposal carries, the status approval or rejection
// gives it, and the status of the earlier version an approved proposal
// replaces ("" where the type cannot replace).
type Lifecycle struct {
	ResourceType string
	// Element is the JSON member that carries the status ("status",
	// "lifecycleStatus"); ResourceType + "." + Element is its FHIRPath.
	Element  string
	Proposed string
	Approved string
	Rejected string
	Replaced string
}

// Path returns the FHIRPath of the status element, for OperationOutcomes.
func (l Lifecycle) Path() string { return l.ResourceType + "." + l.Element }

// ReplacesExtension is the URL of the extension on a proposed Consent
// (valueReference to a Consent) that names the Consent it replaces once
// approved; a CarePlan says the same with CarePlan.replaces, which Consent
// lacks in R4.
const ReplacesExtension = BaseURL + "/StructureDefinition/replaces"

// lifecycles lists the resource types whose proposals are stored as drafts.
// A rejected CarePlan becomes revoked: R4 has no "rejected" CarePlan status,
// and the approve-change Task records that it was a rejection.
var lifecycles = []Lifecycle{
	{ResourceType: "CarePlan", Element: "status", Proposed: PlanDraft, Approved: PlanActive, Rejected: PlanRevoked, Replaced: PlanRevoked},
	{ResourceType: "Goal", Element: "lifecycleStatus", Proposed: GoalProposed, Approved: GoalActive, Rejected: GoalRejected},
	{ResourceType: "Consent", Element: "status", Proposed: ConsentProposed, Approved: ConsentActive, Rejected: ConsentRejected, Replaced: ConsentInactive},
}

// approvalTypes lists what needs the dossierhouder's approval. Plans,
// agreements, goals and permissions do; notes, diary, messages,
// observations, goal progress, documents, appointments, evaluations and help
// questions do not. The team itself (CareTeam) is written only by the
// dossierhouder: others propose a member with an invitation Task (which is
// itself the request and needs no approval) and the grants with proposed
// Consents. Today the type alone decides; NeedsApproval takes the categories
// so that a rule per category stays a change of this table, not of callers.
var approvalTypes = []string{"CarePlan", "Goal", "Consent", "CareTeam"}

// LifecycleOf returns the approval lifecycle of a resource type, and false
// for a type whose proposals are not stored as drafts (it needs no approval,
// or, like CareTeam, is proposed through a Task).
func LifecycleOf(resourceType string) (Lifecycle, bool) {
	for _, l := range lifecycles {
		if l.ResourceType == resourceType {
			return l, true
		}
	}
	return Lifecycle{}, false
}

// NeedsApproval reports whether a write of a resource of the given type and
// category codings (as for SectionOf) by someone in role byRole takes effect
// only after the dossierhouder approves it. The dossierhouder's own writes
// never do; for every other role, including unknown ones, the resource
// type's rule decides. It does not say whether byRole may write the resource
// at all: that is the role's Access and the policy.
func NeedsApproval(resourceType string, categories []Coding, byRole Role) bool {
	if byRole == Dossierhouder {
		return false
	}
	return approvalKind(resourceType, categories)
}

// WriteClass returns the interaction class a write of the resource falls in:
// Propose for what needs approval, WriteOwnNotes for the rest. A role needs
// that class (or Approve, which writes approval kinds directly) in the
// resource's section.
func WriteClass(resourceType string, categories []Coding) Interaction {
	if approvalKind(resourceType, categories) {
		return Propose
	}
	return WriteOwnNotes
}

func approvalKind(resourceType string, _ []Coding) bool {
	return slices.Contains(approvalTypes, resourceType)
}
