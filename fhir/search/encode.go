package search

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/fhir"
)

// Encode returns the search parameters of q in a normalised form, for the
// self and next links of a search Bundle: every parameter that was applied,
// with its values re-rendered (prefix eq left out, :Type folded into the
// references, escapes where needed), and _count always present. It leaves out
// _cursor (the REST layer adds the page's own), _type (for a system search the
// REST layer adds it from Query.Types) and the parameters that were ignored
// with a warning. Parsing the result again gives an equivalent Query.
func (q *Query) Encode() url.Values {
	v := url.Values{}
	for i := range q.Where {
		c := &q.Where[i]
		k, val := clauseKey(c), clauseValue(c)
		v[k] = append(v[k], val)
	}
	v.Set("_count", strconv.Itoa(q.Count))
	if len(q.Sort) > 0 {
		items := make([]string, len(q.Sort))
		for i, s := range q.Sort {
			items[i] = s.Param.Code
			if s.Desc {
				items[i] = "-" + items[i]
			}
		}
		v.Set("_sort", strings.Join(items, ","))
	}
	if q.Total != "" && q.Total != "none" {
		v.Set("_total", q.Total)
	}
	if q.Summary != "" {
		v.Set("_summary", q.Summary)
	}
	if len(q.Elements) > 0 {
		v.Set("_elements", strings.Join(q.Elements, ","))
	}
	for _, inc := range q.Include {
		k := "_include"
		if inc.Iterate {
			k += ":iterate"
		}
		v.Add(k, includeText(inc))
	}
	for _, inc := range q.RevInclude {
		k := "_revinclude"
		if inc.Iterate {
			k += ":iterate"
		}
		v.Add(k, includeText(inc))
	}
	return v
}

// includeText renders the value of an _include or _revinclude.
func includeText(inc Include) string {
	if inc.SourceType == "" {
		return "*"
	}
	s := inc.SourceType + ":"
	if inc.Param == nil {
		return s + "*"
	}
	s += inc.Param.Code
	if inc.TargetType != "" {
		s += ":" + inc.TargetType
	}
	return s
}

// clauseKey renders the parameter name of c: code[:modifier], with its
// chain (code[:Type].next) or _has:Type:reference:next.
func clauseKey(c *Clause) string {
	switch {
	case c.Has != nil:
		return "_has:" + c.Has.Type + ":" + c.Has.RefParam.Code + ":" + clauseKey(&c.Has.Next)
	case c.Chain != nil:
		return c.Chain.Name
	case c.Missing != nil:
		return c.Param.Code + ":missing"
	case c.Modifier != "":
		return c.Param.Code + ":" + string(c.Modifier)
	}
	return c.Param.Code
}

// clauseValue renders the value of c (of its last link).
func clauseValue(c *Clause) string {
	switch {
	case c.Has != nil:
		return clauseValue(&c.Has.Next)
	case c.Chain != nil:
		return c.Chain.Value
	case c.Missing != nil:
		return strconv.FormatBool(*c.Missing)
	}
	parts := make([]string, len(c.Values))
	for i, v := range c.Values {
		parts[i] = valueText(v)
	}
	return strings.Join(parts, ",")
}

// valueText renders one value, escaped.
func valueText(v Value) string {
	switch v := v.(type) {
	case Number:
		return prefixText(v.Prefix) + v.Value
	case Quantity:
		s := prefixText(v.Prefix) + v.Value
		if v.System != "" || v.Code != "" {
			s += "|" + escape(v.System) + "|" + escape(v.Code)
		}
		return s
	case Date:
		return prefixText(v.Prefix) + dateText(v.Range)
	case String:
		return escape(v.Raw)
	case Token:
		if v.SystemGiven {
			return escape(v.System) + "|" + escape(v.Code)
		}
		return escape(v.Code)
	case OfType:
		return escape(v.System) + "|" + escape(v.Code) + "|" + escape(v.Value)
	case Reference:
		if v.URL != "" {
			s := escape(v.URL)
			if v.Version != "" {
				s += "|" + escape(v.Version)
			}
			return s
		}
		s := v.ID
		if v.Type != "" {
			s = v.Type + "/" + s
		}
		if v.Version != "" {
			s += "/_history/" + v.Version
		}
		return s
	case URI:
		return escape(v.Value)
	case Composite:
		parts := make([]string, len(v.Parts))
		for i, p := range v.Parts {
			parts[i] = valueText(p)
		}
		return strings.Join(parts, "$")
	}
	return ""
}

func prefixText(p Prefix) string {
	if p == Eq || p == "" {
		return ""
	}
	return string(p)
}

// dateText renders a date range as the date it was parsed from: same
// precision, same instant. Values of day precision or coarser carry no zone
// (they were read in Parser.Loc and will be again).
func dateText(r fhir.DateRange) string {
	t := r.Start
	switch r.Precision {
	case fhir.Year:
		return t.Format("2006")
	case fhir.Month:
		return t.Format("2006-01")
	case fhir.Day:
		return t.Format("2006-01-02")
	case fhir.Minute:
		return t.Format("2006-01-02T15:04Z07:00")
	case fhir.Second:
		return t.Format("2006-01-02T15:04:05Z07:00")
	}
	digits := 9
	for unit := r.End.Sub(r.Start); unit >= 10*time.Nanosecond && digits > 1; unit /= 10 {
		digits--
	}
	frac := strconv.Itoa(t.Nanosecond() + 1e9)[1 : 1+digits]
	return t.Format("2006-01-02T15:04:05") + "." + frac + t.Format("Z07:00")
}
