package fhir

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Precision is how much of a FHIR date, dateTime or instant was given.
type Precision int

// The precisions of FHIR date values, coarsest first.
const (
	Year Precision = iota
	Month
	Day
	Minute
	Second
	Fraction
)

// DateRange is a FHIR date value read as the interval it denotes:
// "2020-03" is [2020-03-01, 2020-04-01). End is exclusive.
type DateRange struct {
	Start, End time.Time
	Precision  Precision
}

var dateRE = regexp.MustCompile(`^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$`)

// ParseDate reads a FHIR date, dateTime or instant (any precision from the
// year down to fractions of a second) as the range it covers. A value
// without a time zone is read in loc. It returns a plain error describing the
// expected form when s is not a valid date.
func ParseDate(s string, loc *time.Location) (DateRange, error) {
	m := dateRE.FindStringSubmatch(s)
	if m == nil {
		return DateRange{}, fmt.Errorf("%q is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm])", s)
	}
	atoi := func(x string, def int) int {
		if x == "" {
			return def
		}
		n, _ := strconv.Atoi(x)
		return n
	}
	year, month, day := atoi(m[1], 0), atoi(m[2], 1), atoi(m[3], 1)
	hour, minute, sec := atoi(m[4], 0), atoi(m[5], 0), atoi(m[6], 0)
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return DateRange{}, fmt.Errorf("%q is not a valid date: a field is out of range", s)
	}
	zone := loc // a value without a zone is read in the server's zone
	if m[8] == "Z" {
		zone = time.UTC
	} else if m[8] != "" {
		sign := 1
		if m[8][0] == '-' {
			sign = -1
		}
		h, _ := strconv.Atoi(m[8][1:3])
		mm, _ := strconv.Atoi(m[8][4:6])
		if h > 14 || mm > 59 {
			return DateRange{}, fmt.Errorf("%q has an invalid time zone offset", s)
		}
		zone = time.FixedZone("", sign*(h*3600+mm*60))
	}
	nanos := 0
	if m[7] != "" {
		frac := m[7][1:]
		for len(frac) < 9 {
			frac += "0"
		}
		nanos, _ = strconv.Atoi(frac)
	}
	start := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, zone)
	if start.Day() != day {
		return DateRange{}, fmt.Errorf("%q is not a valid date: day %d does not exist in that month", s, day)
	}
	r := DateRange{Start: start}
	switch {
	case m[2] == "":
		r.Precision, r.End = Year, start.AddDate(1, 0, 0)
	case m[3] == "":
		r.Precision, r.End = Month, start.AddDate(0, 1, 0)
	case m[4] == "":
		r.Precision, r.End = Day, start.AddDate(0, 0, 1)
	case m[6] == "":
		r.Precision, r.End = Minute, start.Add(time.Minute)
	case m[7] == "":
		r.Precision, r.End = Second, start.Add(time.Second)
	default:
		digits := len(m[7]) - 1
		unit := time.Duration(1)
		for i := digits; i < 9; i++ {
			unit *= 10
		}
		r.Precision, r.End = Fraction, start.Add(unit)
	}
	return r, nil
}
