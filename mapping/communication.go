package mapping

// communication is the JSON of the Communication elements notes, diary
// entries and messages use, in R4 order.
type communication struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	InResponseTo []reference       `json:"inResponseTo,omitempty"`
	Status       string            `json:"status"`
	Category     []codeableConcept `json:"category,omitempty"`
	Subject      reference         `json:"subject,omitzero"`
	About        []reference       `json:"about,omitempty"`
	Sent         string            `json:"sent,omitempty"`
	Recipient    []reference       `json:"recipient,omitempty"`
	Sender       reference         `json:"sender,omitzero"`
	Payload      []payload         `json:"payload,omitempty"`
}

type payload struct {
	ContentString string `json:"contentString"`
}

// Reference types Communication allows for its sender and recipients.
var (
	senderTypes    = []string{"Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Device", "HealthcareService"}
	recipientTypes = []string{"Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Device", "Group", "CareTeam", "HealthcareService"}
)

// communicationStatus returns s, or "completed" when s is empty: a note,
// diary entry or message is written once it exists.
func communicationStatus(s string) string {
	if s == "" {
		return "completed"
	}
	return s
}

// checkCommunication checks what notes, diary entries and messages share.
func checkCommunication(c *checker, status, subject, author, sent, text string) {
	c.oneOf("Communication.status", communicationStatus(status), communicationStatuses)
	c.ref("Communication.subject", subject, "Patient", "Group")
	c.required("Communication.sender", author)
	c.ref("Communication.sender", author, senderTypes...)
	c.dateTime("Communication.sent", sent)
	c.required("Communication.payload.contentString", text)
}

// readCommunication decodes b as a Communication of category cat and returns
// it with its payload text; issues go to c.
func readCommunication(c *checker, b []byte, cat CommunicationCategory) (communication, string, error) {
	var in communication
	if err := decode(b, "Communication", &in); err != nil {
		return in, "", err
	}
	c.required("Communication.status", in.Status)
	cats := codings(in.Category)
	if !hasCoding(cats, cat.Coding()) {
		c.addf("Communication.category", "the Communication is not a %s (no category %s|%s)", cat, CommunicationCategorySystem, cat)
	}
	for _, other := range []CommunicationCategory{NoteCategory, DiaryCategory, MessageCategory} {
		if other != cat && hasCoding(cats, other.Coding()) {
			c.addf("Communication.category", "the Communication is both a %s and a %s", cat, other)
		}
	}
	var texts []string
	for _, p := range in.Payload {
		texts = append(texts, p.ContentString)
	}
	return in, one(c, "Communication.payload", texts), nil
}

// Note is a note on an agreement's note sheet (notitieblad per afspraak).
// It is carried by a Communication with categories note and the plan kind of
// the agreement's plan (which places it in that plan's section), about the
// agreement. Adding a note never needs approval.
type Note struct {
	ID       string       // logical id; empty for a resource still to be created
	About    string       // CarePlan/… of the agreement (Communication.about)
	PlanKind PlanCategory // the kind of the agreement's plan
	Subject  string       // Patient/… or Group/… the agreement is about; optional
	Author   string       // who wrote it (Communication.sender)
	Sent     string       // FHIR dateTime it was written
	Text     string       // the note
	Status   string       // Communication.status; empty means "completed"
}

func (n Note) check(c *checker) {
	c.id("Communication.id", n.ID)
	checkPlanKind(c, "Communication.category", n.PlanKind)
	c.required("Communication.about", n.About)
	c.ref("Communication.about", n.About, "CarePlan")
	checkCommunication(c, n.Status, n.Subject, n.Author, n.Sent, n.Text)
}

// ToFHIR returns n as a Communication in FHIR R4 JSON. It returns an error
// of kind fhir.Invalid when n breaks a domain rule (no agreement, plan kind,
// author or text; malformed date or references).
func (n Note) ToFHIR() ([]byte, error) {
	return produce("note to FHIR", n.check, communication{
		ResourceType: "Communication",
		ID:           n.ID,
		Status:       communicationStatus(n.Status),
		Category:     concepts(NoteCategory.Coding(), n.PlanKind.Coding()),
		Subject:      ref(n.Subject),
		About:        refs(n.About),
		Sent:         n.Sent,
		Sender:       ref(n.Author),
		Payload:      []payload{{ContentString: n.Text}},
	})
}

// NoteFromFHIR reads a note from a Communication in FHIR R4 JSON. Elements
// the domain does not carry are ignored. It returns an error of kind
// fhir.Invalid when b is not a Communication with the note category, one plan
// kind, one agreement it is about and one text payload, or breaks a rule of
// Note.ToFHIR.
func NoteFromFHIR(b []byte) (Note, error) {
	var c checker
	in, text, err := readCommunication(&c, b, NoteCategory)
	if err != nil {
		return Note{}, wrap("note from FHIR", err)
	}
	kind, _ := planKindIn(&c, "Communication.category", codings(in.Category))
	n := Note{
		ID:       in.ID,
		About:    one(&c, "Communication.about", refStrings(in.About)),
		PlanKind: kind,
		Subject:  in.Subject.Reference,
		Author:   in.Sender.Reference,
		Sent:     in.Sent,
		Text:     text,
		Status:   in.Status,
	}
	return checked("note from FHIR", &c, n, Note.check)
}

// DiaryEntry is an entry in the diary (dagboek): how things are going, what
// stood out. It is carried by a Communication with category diary whose
// subject is the child (or the family Group) the diary is of.
type DiaryEntry struct {
	ID      string // logical id; empty for a resource still to be created
	Subject string // Patient/… or Group/… whose diary it is
	Author  string // who wrote it (Communication.sender)
	Sent    string // FHIR dateTime it was written
	Text    string // the entry
	Status  string // Communication.status; empty means "completed"
}

func (d DiaryEntry) check(c *checker) {
	c.id("Communication.id", d.ID)
	c.required("Communication.subject", d.Subject)
	checkCommunication(c, d.Status, d.Subject, d.Author, d.Sent, d.Text)
}

// ToFHIR returns d as a Communication in FHIR R4 JSON. It returns an error
// of kind fhir.Invalid when d breaks a domain rule (no subject, author or
// text; malformed date or references).
func (d DiaryEntry) ToFHIR() ([]byte, error) {
	return produce("diary entry to FHIR", d.check, communication{
		ResourceType: "Communication",
		ID:           d.ID,
		Status:       communicationStatus(d.Status),
		Category:     concepts(DiaryCategory.Coding()),
		Subject:      ref(d.Subject),
		Sent:         d.Sent,
		Sender:       ref(d.Author),
		Payload:      []payload{{ContentString: d.Text}},
	})
}

// DiaryEntryFromFHIR reads a diary entry from a Communication in FHIR R4
// JSON. Elements the domain does not carry are ignored. It returns an error
// of kind fhir.Invalid when b is not a Communication with the diary category
// and one text payload, or breaks a rule of DiaryEntry.ToFHIR.
func DiaryEntryFromFHIR(b []byte) (DiaryEntry, error) {
	var c checker
	in, text, err := readCommunication(&c, b, DiaryCategory)
	if err != nil {
		return DiaryEntry{}, wrap("diary entry from FHIR", err)
	}
	d := DiaryEntry{
		ID:      in.ID,
		Subject: in.Subject.Reference,
		Author:  in.Sender.Reference,
		Sent:    in.Sent,
		Text:    text,
		Status:  in.Status,
	}
	return checked("diary entry from FHIR", &c, d, DiaryEntry.check)
}

// Message is a message in the communication channel between the
// participants of an environment. It is carried by a Communication with
// category message. A parent without authority asks the dossierhouder for
// information with a message.
type Message struct {
	ID           string   // logical id; empty for a resource still to be created
	Subject      string   // Patient/… or Group/… the message is about; optional
	Sender       string   // who sent it
	Recipients   []string // who it is for; at least one
	Sent         string   // FHIR dateTime it was sent
	Text         string   // the message
	InResponseTo string   // Communication/… it answers; optional
	Status       string   // Communication.status; empty means "completed"
}

func (m Message) check(c *checker) {
	c.id("Communication.id", m.ID)
	checkCommunication(c, m.Status, m.Subject, m.Sender, m.Sent, m.Text)
	if len(m.Recipients) == 0 {
		c.required("Communication.recipient", "")
	}
	c.refs("Communication.recipient", m.Recipients, recipientTypes...)
	c.ref("Communication.inResponseTo", m.InResponseTo, "Communication")
}

// ToFHIR returns m as a Communication in FHIR R4 JSON. It returns an error
// of kind fhir.Invalid when m breaks a domain rule (no sender, recipient or
// text; malformed date or references).
func (m Message) ToFHIR() ([]byte, error) {
	return produce("message to FHIR", m.check, communication{
		ResourceType: "Communication",
		ID:           m.ID,
		InResponseTo: refs(m.InResponseTo),
		Status:       communicationStatus(m.Status),
		Category:     concepts(MessageCategory.Coding()),
		Subject:      ref(m.Subject),
		Sent:         m.Sent,
		Recipient:    refs(m.Recipients...),
		Sender:       ref(m.Sender),
		Payload:      []payload{{ContentString: m.Text}},
	})
}

// MessageFromFHIR reads a message from a Communication in FHIR R4 JSON.
// Elements the domain does not carry are ignored. It returns an error of kind
// fhir.Invalid when b is not a Communication with the message category and
// one text payload, or breaks a rule of Message.ToFHIR.
func MessageFromFHIR(b []byte) (Message, error) {
	var c checker
	in, text, err := readCommunication(&c, b, MessageCategory)
	if err != nil {
		return Message{}, wrap("message from FHIR", err)
	}
	m := Message{
		ID:           in.ID,
		Subject:      in.Subject.Reference,
		Sender:       in.Sender.Reference,
		Recipients:   refStrings(in.Recipient),
		Sent:         in.Sent,
		Text:         text,
		InResponseTo: one(&c, "Communication.inResponseTo", refStrings(in.InResponseTo)),
		Status:       in.Status,
	}
	return checked("message from FHIR", &c, m, Message.check)
}
