package mapping

import "fmt"

// appointment is the JSON of the Appointment elements the agenda uses.
type appointment struct {
	ResourceType string                   `json:"resourceType"`
	ID           string                   `json:"id,omitempty"`
	Status       string                   `json:"status"`
	Description  string                   `json:"description,omitempty"`
	Start        string                   `json:"start,omitempty"`
	End          string                   `json:"end,omitempty"`
	Comment      string                   `json:"comment,omitempty"`
	Participant  []appointmentParticipant `json:"participant"`
}

type appointmentParticipant struct {
	Actor  reference `json:"actor"`
	Status string    `json:"status"`
}

// participantTypes are the reference types Appointment.participant.actor
// allows.
var participantTypes = []string{"Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Device", "HealthcareService", "Location"}

// Participant is someone taking part in an appointment, with their answer.
type Participant struct {
	Actor  string // Patient/…, RelatedPerson/…, Practitioner/…, PractitionerRole/… (or Location, Device, HealthcareService)
	Status string // accepted, declined, tentative or needs-action
}

// Appointment is an entry in the agenda: a handover, a school meeting, a
// session with a helper. It is carried by an Appointment whose participants
// are the child, the parents and the helpers concerned.
type Appointment struct {
	ID           string // logical id; empty for a resource still to be created
	Status       string // Appointment.status: proposed, booked, fulfilled, cancelled…
	Description  string
	Start        string // FHIR instant; required unless proposed, cancelled or waitlist
	End          string // FHIR instant; given exactly when Start is
	Comment      string
	Participants []Participant // at least one
}

func (a Appointment) check(c *checker) {
	c.id("Appointment.id", a.ID)
	c.oneOf("Appointment.status", a.Status, appointmentStatuses)
	start, okStart := c.instant("Appointment.start", a.Start)
	end, okEnd := c.instant("Appointment.end", a.End)
	if (a.Start == "") != (a.End == "") {
		c.addf("Appointment", "start and end are given together or not at all (app-2)")
	}
	if a.Start == "" && a.Status != "proposed" && a.Status != "cancelled" && a.Status != "waitlist" {
		c.addf("Appointment.start", "only a proposed, cancelled or waitlist appointment may have no start and end (app-3)")
	}
	if okStart && okEnd && end.Before(start) {
		c.addf("Appointment.end", "the appointment ends before it starts")
	}
	if len(a.Participants) == 0 {
		c.required("Appointment.participant", "")
	}
	for i, p := range a.Participants {
		e := fmt.Sprintf("Appointment.participant[%d]", i)
		c.required(e+".actor", p.Actor)
		c.ref(e+".actor", p.Actor, participantTypes...)
		c.oneOf(e+".status", p.Status, participationStatuses)
	}
}

// ToFHIR returns a as an Appointment in FHIR R4 JSON. It returns an error of
// kind fhir.Invalid when a breaks a domain rule or an R4 invariant (unknown
// status, no participants, start without end, malformed instants or
// references).
func (a Appointment) ToFHIR() ([]byte, error) {
	out := appointment{
		ResourceType: "Appointment",
		ID:           a.ID,
		Status:       a.Status,
		Description:  a.Description,
		Start:        a.Start,
		End:          a.End,
		Comment:      a.Comment,
	}
	for _, p := range a.Participants {
		out.Participant = append(out.Participant, appointmentParticipant{Actor: ref(p.Actor), Status: p.Status})
	}
	return produce("appointment to FHIR", a.check, out)
}

// AppointmentFromFHIR reads an agenda entry from an Appointment in FHIR R4
// JSON. Elements the domain does not carry are ignored. It returns an error
// of kind fhir.Invalid when b is not an Appointment, a participant has no
// actor, or it breaks a rule of Appointment.ToFHIR.
func AppointmentFromFHIR(b []byte) (Appointment, error) {
	var in appointment
	if err := decode(b, "Appointment", &in); err != nil {
		return Appointment{}, wrap("appointment from FHIR", err)
	}
	a := Appointment{
		ID:          in.ID,
		Status:      in.Status,
		Description: in.Description,
		Start:       in.Start,
		End:         in.End,
		Comment:     in.Comment,
	}
	for _, p := range in.Participant {
		a.Participants = append(a.Participants, Participant{Actor: p.Actor.Reference, Status: p.Status})
	}
	var c checker
	return checked("appointment from FHIR", &c, a, Appointment.check)
}
