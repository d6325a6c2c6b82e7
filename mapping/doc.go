// Package mapping is the Digitale Ouder domain: the record's sections, the
// roles and what they may do by default, the age bands and the rights each
// gives, the approval rules, the project's code systems, and the conversion
// between domain types and FHIR R4 JSON resources.
//
// It is pure Go without I/O: every function is deterministic (time is passed
// in), so the access policy, the write path and the implementation guide can
// all build on one definition of the domain. docs/mapping.md explains the
// mapping for readers; this package is its executable form.
//
// Errors about invalid input are *fhir.Error values of kind fhir.Invalid whose
// issues carry the FHIRPath expression of the offending element, so the REST
// layer can return them as an OperationOutcome unchanged.
package mapping
