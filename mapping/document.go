package mapping

import (
	"bytes"
	"crypto/sha1"
	"strings"
)

// documentReferenceResource is the JSON of the DocumentReference elements the
// document folder uses.
type documentReferenceResource struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Status       string            `json:"status"`
	Subject      reference         `json:"subject,omitzero"`
	Date         string            `json:"date,omitempty"`
	Author       []reference       `json:"author,omitempty"`
	Description  string            `json:"description,omitempty"`
	Content      []documentContent `json:"content"`
}

type documentContent struct {
	Attachment attachment `json:"attachment"`
}

type attachment struct {
	ContentType string `json:"contentType,omitempty"`
	URL         string `json:"url,omitempty"`
	Size        *int   `json:"size,omitempty"`
	Hash        []byte `json:"hash,omitempty"` // base64 of the SHA-1 of the data, as R4 defines it
	Title       string `json:"title,omitempty"`
}

// binaryResource is the JSON of a Binary.
type binaryResource struct {
	ResourceType    string    `json:"resourceType"`
	ID              string    `json:"id,omitempty"`
	ContentType     string    `json:"contentType"`
	SecurityContext reference `json:"securityContext,omitzero"`
	Data            []byte    `json:"data,omitempty"`
}

// Document is a document in the document folder (documentenmap): a scan, a
// signed form, a report. It is carried by two resources: a DocumentReference
// (the metadata, in the documents section) whose attachment points at a
// Binary (the bytes). The Binary's securityContext is the DocumentReference,
// so access to the bytes follows access to the document.
type Document struct {
	ID          string // logical id of the DocumentReference
	BinaryID    string // logical id of the Binary
	Status      string // DocumentReference.status: current, superseded or entered-in-error
	Subject     string // Patient/… or Group/… the document is about; optional
	Author      string // who added it; optional
	Date        string // FHIR instant it was added (DocumentReference.date)
	Title       string // the attachment's title (file name or caption)
	Description string
	ContentType string // MIME type of Data, e.g. application/pdf
	Data        []byte // the document itself
}

func (d Document) check(c *checker) {
	c.required("DocumentReference.id", d.ID)
	c.id("DocumentReference.id", d.ID)
	c.required("Binary.id", d.BinaryID)
	c.id("Binary.id", d.BinaryID)
	c.oneOf("DocumentReference.status", d.Status, documentStatuses)
	c.ref("DocumentReference.subject", d.Subject, "Patient", "Group")
	c.ref("DocumentReference.author", d.Author, "Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Device")
	c.instant("DocumentReference.date", d.Date)
	c.required("DocumentReference.content.attachment.contentType", d.ContentType)
	if strings.ContainsAny(d.ContentType, " \t\r\n") || (d.ContentType != "" && !strings.Contains(d.ContentType, "/")) {
		c.addf("DocumentReference.content.attachment.contentType", "%q is not a MIME type", d.ContentType)
	}
}

// ToFHIR returns d as a DocumentReference and the Binary it points at, both
// in FHIR R4 JSON. The attachment records the size and SHA-1 hash of the
// data. Both ids are required, because each resource refers to the other. It
// returns an error of kind fhir.Invalid when d breaks a domain rule (no ids,
// status or content type; malformed date or references).
func (d Document) ToFHIR() (documentReference, binary []byte, err error) {
	if _, err := checked("document to FHIR", &checker{}, d, Document.check); err != nil {
		return nil, nil, err
	}
	size := len(d.Data)
	hash := sha1.Sum(d.Data)
	documentReference, err = encode(documentReferenceResource{
		ResourceType: "DocumentReference",
		ID:           d.ID,
		Status:       d.Status,
		Subject:      ref(d.Subject),
		Date:         d.Date,
		Author:       refs(d.Author),
		Description:  d.Description,
		Content: []documentContent{{Attachment: attachment{
			ContentType: d.ContentType,
			URL:         "Binary/" + d.BinaryID,
			Size:        &size,
			Hash:        hash[:],
			Title:       d.Title,
		}}},
	})
	if err != nil {
		return nil, nil, wrap("document to FHIR", err)
	}
	binary, err = encode(binaryResource{
		ResourceType:    "Binary",
		ID:              d.BinaryID,
		ContentType:     d.ContentType,
		SecurityContext: ref("DocumentReference/" + d.ID),
		Data:            d.Data,
	})
	if err != nil {
		return nil, nil, wrap("document to FHIR", err)
	}
	return documentReference, binary, nil
}

// DocumentFromFHIR reads a document from a DocumentReference and, when
// binary is not nil, the Binary it points at, both in FHIR R4 JSON. Without
// the Binary, Data is nil (a listing needs only the metadata). Elements the
// domain does not carry are ignored. It returns an error of kind
// fhir.Invalid when the DocumentReference has not exactly one attachment
// with a Binary/… url, when the Binary is not the one the attachment points
// at, its content type differs or its data does not match the attachment's
// size or hash, or when a rule of Document.ToFHIR is broken.
func DocumentFromFHIR(documentReference, binary []byte) (Document, error) {
	var dr documentReferenceResource
	if err := decode(documentReference, "DocumentReference", &dr); err != nil {
		return Document{}, wrap("document from FHIR", err)
	}
	var c checker
	if len(dr.Content) != 1 {
		c.addf("DocumentReference.content", "a document has exactly one attachment, got %d", len(dr.Content))
		return Document{}, wrap("document from FHIR", c.err())
	}
	att := dr.Content[0].Attachment
	binaryID, ok := strings.CutPrefix(att.URL, "Binary/")
	if !ok {
		c.addf("DocumentReference.content[0].attachment.url", "%q does not point at a Binary of this server (Binary/id)", att.URL)
	}
	d := Document{
		ID:          dr.ID,
		BinaryID:    binaryID,
		Status:      dr.Status,
		Subject:     dr.Subject.Reference,
		Author:      one(&c, "DocumentReference.author", refStrings(dr.Author)),
		Date:        dr.Date,
		Title:       att.Title,
		Description: dr.Description,
		ContentType: att.ContentType,
	}
	if binary != nil {
		var bin binaryResource
		if err := decode(binary, "Binary", &bin); err != nil {
			return Document{}, wrap("document from FHIR", err)
		}
		if bin.ID != binaryID {
			c.addf("Binary.id", "the Binary is %q, the attachment points at %q", bin.ID, att.URL)
		}
		if bin.ContentType != att.ContentType {
			c.addf("Binary.contentType", "%q differs from the attachment's %q", bin.ContentType, att.ContentType)
		}
		if sc := bin.SecurityContext.Reference; sc != "" && sc != "DocumentReference/"+dr.ID {
			c.addf("Binary.securityContext", "%q is not the DocumentReference %q", sc, dr.ID)
		}
		if att.Size != nil && *att.Size != len(bin.Data) {
			c.addf("DocumentReference.content[0].attachment.size", "size %d, but the Binary has %d bytes", *att.Size, len(bin.Data))
		}
		if sum := sha1.Sum(bin.Data); att.Hash != nil && !bytes.Equal(att.Hash, sum[:]) {
			c.addf("DocumentReference.content[0].attachment.hash", "the hash does not match the Binary's data")
		}
		d.Data = bin.Data
	}
	return checked("document from FHIR", &c, d, Document.check)
}
