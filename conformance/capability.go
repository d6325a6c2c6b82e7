package conformance

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/digitaleouder/ouder/conformance/searchparam"
)

// Capabilities is what the REST layer really implements; the
// CapabilityStatement is generated from it and from the R4 model, never
// written by hand.
type Capabilities struct {
	Software string    // software.name
	Version  string    // software.version
	BaseURL  string    // implementation.url, the FHIR base
	Date     time.Time // when this statement was generated
	// TypeInteractions are the type- and instance-level interactions
	// (read, vread, update, delete, history-instance, history-type, create,
	// search-type) every resource type supports.
	TypeInteractions []string
	// SystemInteractions are the whole-system interactions
	// (history-system, transaction, batch, search-system).
	SystemInteractions []string
	// ConditionalRead is not-supported | modified-since | not-match | full-support.
	ConditionalRead string
	// ConditionalCreate and ConditionalUpdate report If-None-Exist and
	// PUT [type]?[search] support.
	ConditionalCreate, ConditionalUpdate bool
	// ConditionalDelete is not-supported | single | multiple; empty
	// means not-supported.
	ConditionalDelete string
	// Formats are the mime types served (format is 0..* in CapabilityStatement).
	Formats []string
	// Search is the registry of search parameters listed per type (nil:
	// none).
	Search *searchparam.Registry
	// Compartments are the CompartmentDefinitions searches can be
	// limited to.
	Compartments []string
	// SupportedProfiles are the profiles the server validates, by resource
	// type (rest.resource.supportedProfile); see Parser.SupportedProfiles.
	SupportedProfiles map[string][]string
	// ImplementationGuides are the canonical URLs of the implementation
	// guides the server implements.
	ImplementationGuides []string
	// Operations are the operations every resource type supports at type
	// and instance level (rest.resource.operation).
	Operations []Operation
	// TypeOperations are the operations only some types support, by type
	// (declared after Operations on those types).
	TypeOperations map[string][]Operation
	// ReadOnlyTypes are the types the server writes itself and clients
	// only read (AuditEvent, Provenance), with the interactions they
	// support instead of TypeInteractions; they take no conditional
	// writes.
	ReadOnlyTypes map[string][]string
}

// Operation is an operation the server supports: its name without the $
// and the canonical URL of its OperationDefinition.
type Operation struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

// ValidateOperation is the $validate operation of R4.
var ValidateOperation = Operation{Name: "validate", Definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate"}

type capStatement struct {
	ResourceType   string      `json:"resourceType"`
	ID             string      `json:"id"`
	Status         string      `json:"status"`
	Date           string      `json:"date"`
	Publisher      string      `json:"publisher"`
	Kind           string      `json:"kind"`
	Software       capSoftware `json:"software"`
	Implementation capImpl     `json:"implementation"`
	FHIRVersion    string      `json:"fhirVersion"`
	Format         []string    `json:"format"`
	Guides         []string    `json:"implementationGuide,omitempty"`
	Rest           []capRest   `json:"rest"`
}

type capSoftware struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type capImpl struct {
	Description string `json:"description"`
	URL         string `json:"url"`
}

type capRest struct {
	Mode        string        `json:"mode"`
	Resource    []capResource `json:"resource"`
	Interaction []capCode     `json:"interaction,omitempty"`
	Compartment []string      `json:"compartment,omitempty"`
}

type capResource struct {
	Type              string      `json:"type"`
	SupportedProfile  []string    `json:"supportedProfile,omitempty"`
	Interaction       []capCode   `json:"interaction"`
	Versioning        string      `json:"versioning"`
	ReadHistory       bool        `json:"readHistory"`
	UpdateCreate      bool        `json:"updateCreate"`
	ConditionalCreate bool        `json:"conditionalCreate"`
	ConditionalRead   string      `json:"conditionalRead"`
	ConditionalUpdate bool        `json:"conditionalUpdate"`
	ConditionalDelete string      `json:"conditionalDelete"`
	SearchInclude     []string    `json:"searchInclude,omitempty"`
	SearchRevInclude  []string    `json:"searchRevInclude,omitempty"`
	SearchParam       []capParam  `json:"searchParam,omitempty"`
	Operation         []Operation `json:"operation,omitempty"`
}

type capParam struct {
	Name       string `json:"name"`
	Definition string `json:"definition,omitempty"`
	Type       string `json:"type"`
}

type capCode struct {
	Code string `json:"code"`
}

func codes(cs []string) []capCode {
	out := make([]capCode, len(cs))
	for i, c := range cs {
		out[i] = capCode{Code: c}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CapabilityStatement returns the server's CapabilityStatement as JSON
// (FHIR 4.0.1, kind instance), listing every R4 resource type with the
// interactions in c. It fails only if the statement cannot be encoded.
func CapabilityStatement(c Capabilities) ([]byte, error) {
	cs := capStatement{
		ResourceType: "CapabilityStatement",
		ID:           "ouderd",
		Status:       "active",
		Date:         c.Date.UTC().Format(time.RFC3339),
		Publisher:    "Digitale Ouder",
		Kind:         "instance",
		Software:     capSoftware{Name: c.Software, Version: c.Version},
		Implementation: capImpl{
			Description: "Digitale Ouder FHIR R4 server",
			URL:         c.BaseURL,
		},
		FHIRVersion: "4.0.1",
		Format:      c.Formats,
		Guides:      c.ImplementationGuides,
	}
	if len(cs.Format) == 0 {
		cs.Format = []string{"application/fhir+json"}
	}
	rest := capRest{Mode: "server", Interaction: codes(c.SystemInteractions), Compartment: c.Compartments}
	revIncludes := map[string][]string{}
	if c.Search != nil {
		for _, t := range ResourceTypes() {
			for _, p := range c.Search.Params(t) {
				if p.Kind != searchparam.Reference || p.NotIndexed != "" {
					continue
				}
				for _, target := range p.Targets {
					revIncludes[target] = append(revIncludes[target], t+":"+p.Code)
				}
			}
		}
	}
	conditionalDelete := c.ConditionalDelete
	if conditionalDelete == "" {
		conditionalDelete = "not-supported"
	}
	for _, t := range ResourceTypes() {
		var params []capParam
		var includes []string
		if c.Search != nil {
			includes = append(includes, "*")
			for _, p := range c.Search.Params(t) {
				if p.NotIndexed != "" {
					continue
				}
				params = append(params, capParam{Name: p.Code, Definition: p.URL, Type: p.Kind})
				if p.Kind == searchparam.Reference {
					includes = append(includes, t+":"+p.Code)
				}
			}
		}
		interactions := c.TypeInteractions
		condCreate, condUpdate, condDelete := c.ConditionalCreate, c.ConditionalUpdate, conditionalDelete
		if ro, ok := c.ReadOnlyTypes[t]; ok {
			interactions, condCreate, condUpdate, condDelete = ro, false, false, "not-supported"
		}
		rest.Resource = append(rest.Resource, capResource{
			SupportedProfile:  c.SupportedProfiles[t],
			Operation:         append(slices.Clip(c.Operations), c.TypeOperations[t]...),
			SearchParam:       params,
			SearchInclude:     includes,
			SearchRevInclude:  revIncludes[t],
			Type:              t,
			Interaction:       codes(interactions),
			Versioning:        "versioned-update",
			ReadHistory:       contains(interactions, "vread"),
			UpdateCreate:      contains(interactions, "update"),
			ConditionalCreate: condCreate,
			ConditionalRead:   c.ConditionalRead,
			ConditionalUpdate: condUpdate,
			ConditionalDelete: condDelete,
		})
	}
	cs.Rest = []capRest{rest}
	b, err := json.Marshal(cs)
	if err != nil {
		return nil, fmt.Errorf("conformance: encode CapabilityStatement: %w", err)
	}
	return b, nil
}
