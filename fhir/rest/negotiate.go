package rest

import (
	"context"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
)

// The media types the server reads and writes. XML and Turtle are valid FHIR
// formats that this server does not produce; asking for them answers 406.
const (
	mediaFHIRJSON = "application/fhir+json"
	mediaJSON     = "application/json"
)

// view is how the client wants responses rendered, settled once per request
// by the negotiate middleware.
type view struct {
	contentType string // with charset
	pretty      bool
	query       url.Values // the parsed query string, read once per request
}

type viewKey struct{}

func viewFrom(ctx context.Context) view {
	if v, ok := ctx.Value(viewKey{}).(view); ok {
		return v
	}
	return view{contentType: mediaFHIRJSON + "; charset=utf-8"}
}

// queryOf returns the request's query parameters, parsed once by negotiate.
func queryOf(r *http.Request) url.Values {
	if v, ok := r.Context().Value(viewKey{}).(view); ok && v.query != nil {
		return v.query
	}
	return r.URL.Query()
}

// formatAliases maps _format values onto a media type; the empty string
// marks a known FHIR format the server does not produce.
var formatAliases = map[string]string{
	"json":                  mediaFHIRJSON,
	mediaFHIRJSON:           mediaFHIRJSON,
	mediaJSON:               mediaJSON,
	"application/json+fhir": mediaFHIRJSON, // DSTU2 name, still sent by some clients
	"text/json":             mediaJSON,
	"xml":                   "",
	"text/xml":              "",
	"application/xml":       "",
	"application/fhir+xml":  "",
	"ttl":                   "",
	"text/turtle":           "",
	"html":                  "",
	"text/html":             "",
}

// negotiate settles the response format from _format and Accept (406 when
// no JSON form is acceptable) and reads _pretty.
func (s *Server) negotiate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		v := view{contentType: mediaFHIRJSON + "; charset=utf-8", query: q}
		fail := func(err error) {
			s.writeError(w, r.WithContext(context.WithValue(r.Context(), viewKey{}, v)), err)
		}
		if p := q.Get("_pretty"); p != "" {
			b, err := strconv.ParseBool(p)
			if err != nil {
				fail(fhir.Errorf(fhir.Invalid, "_pretty", "_pretty must be true or false, not %q", p))
				return
			}
			v.pretty = b
		}
		if f := q.Get("_format"); f != "" {
			mt, params, err := mime.ParseMediaType(strings.ReplaceAll(f, " ", "+"))
			if err != nil {
				mt = strings.ToLower(f)
			}
			media, known := formatAliases[mt]
			if !known || media == "" || !fhirVersionOK(params) {
				fail(fhir.Errorf(fhir.NotAcceptable, "_format", "_format %q is not supported: this server speaks FHIR R4 JSON (json, application/fhir+json, application/json)", f))
				return
			}
			v.contentType = media + "; charset=utf-8"
		} else if accept := r.Header.Get("Accept"); accept != "" {
			media, ok := acceptable(accept)
			if !ok {
				fail(fhir.Errorf(fhir.NotAcceptable, "", "Accept %q names no format this server produces: use application/fhir+json or application/json (FHIR 4.0)", accept))
				return
			}
			v.contentType = media + "; charset=utf-8"
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewKey{}, v)))
	})
}

// fhirVersionOK accepts a missing fhirVersion parameter or an R4 one.
func fhirVersionOK(params map[string]string) bool {
	fv, ok := params["fhirversion"]
	return !ok || fv == "4.0" || fv == "4.0.1"
}

// acceptable picks the media type to answer with from an Accept header: the
// first JSON form with a positive quality, where */* and application/*
// mean FHIR JSON.
func acceptable(accept string) (string, bool) {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if qs, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(qs, 64); err == nil {
				q = f
			}
		}
		if q <= 0 || !fhirVersionOK(params) {
			continue
		}
		var media string
		switch mt {
		case mediaFHIRJSON, "application/json+fhir", "*/*", "application/*":
			media = mediaFHIRJSON
		case mediaJSON, "text/json":
			media = mediaJSON
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = media, q
		}
	}
	return best, best != ""
}

// checkContentType refuses a request body that is not FHIR JSON (415).
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return fhir.Errorf(fhir.UnsupportedMediaType, "", "the request has no Content-Type: send application/fhir+json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fhir.Errorf(fhir.UnsupportedMediaType, "", "Content-Type %q cannot be parsed", ct)
	}
	switch mt {
	case mediaFHIRJSON, mediaJSON, "application/json+fhir":
	default:
		return fhir.Errorf(fhir.UnsupportedMediaType, "", "Content-Type %q is not supported: send application/fhir+json", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fhir.Errorf(fhir.UnsupportedMediaType, "", "charset %q is not supported: FHIR JSON is UTF-8", cs)
	}
	if !fhirVersionOK(params) {
		return fhir.Errorf(fhir.UnsupportedMediaType, "", "fhirVersion %q is not supported: this server is FHIR 4.0.1", params["fhirversion"])
	}
	return nil
}

// preferReturn is the return preference of the Prefer header.
type preferReturn int

const (
	returnRepresentation preferReturn = iota
	returnMinimal
	returnOutcome
)

// preferOf reads Prefer: return=minimal|representation|OperationOutcome.
func preferOf(r *http.Request) preferReturn {
	for _, h := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(h, ";") {
			for _, kv := range strings.Split(p, ",") {
				k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
				if !strings.EqualFold(k, "return") {
					continue
				}
				switch strings.Trim(v, `"`) {
				case "minimal":
					return returnMinimal
				case "OperationOutcome":
					return returnOutcome
				}
			}
		}
	}
	return returnRepresentation
}

// versionOf parses an ETag-style version: W/"3", "3" or 3.
func versionOf(tag string) (int64, bool) {
	tag = strings.TrimSpace(tag)
	tag = strings.TrimPrefix(tag, "W/")
	tag = strings.Trim(tag, `"`)
	n, err := strconv.ParseInt(tag, 10, 64)
	return n, err == nil && n > 0
}

func indent(b []byte) []byte { return rawjson.Indent(b) }
