package conformance

import (
	"sort"
	"sync"

	r4pb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// resourceTypes is read once from the R4 model: the resource types the server
// accepts are exactly those its parser can represent.
var resourceTypes = sync.OnceValues(func() ([]string, map[string]bool) {
	d := (&r4pb.ContainedResource{}).ProtoReflect().Descriptor()
	fields := d.Oneofs().ByName("oneof_resource").Fields()
	names := make([]string, 0, fields.Len())
	set := make(map[string]bool, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		n := string(fields.Get(i).Message().Name())
		names = append(names, n)
		set[n] = true
	}
	sort.Strings(names)
	return names, set
})

// ResourceTypes returns every concrete FHIR R4 resource type, sorted. The
// caller must not modify the slice.
func ResourceTypes() []string {
	names, _ := resourceTypes()
	return names
}

// IsResourceType reports whether name is a concrete FHIR R4 resource type.
func IsResourceType(name string) bool {
	_, set := resourceTypes()
	return set[name]
}
