package mapping

import (
	"errors"
	"fmt"
	"time"

	"github.com/digitaleouder/ouder/fhir"
)

// AgeBand is one of the age bands the Dutch rules on a minor's rights
// distinguish (WGBO, Jeugdwet, ouderlijk gezag; see docs/mapping.md).
type AgeBand int

// The age bands. The zero value is no band.
const (
	Under12    AgeBand = iota + 1 // 0 to 11: parents with authority decide and see everything
	From12To15                    // 12 to 15: own access; sharing needs the child's and a parent's consent
	From16To17                    // 16 and 17: the child decides alone
	Adult                         // 18 and over: parental access ends unless granted
)

// String returns the band's code: under-12, 12-15, 16-17 or 18-plus.
func (b AgeBand) String() string {
	switch b {
	case Under12:
		return "under-12"
	case From12To15:
		return "12-15"
	case From16To17:
		return "16-17"
	case Adult:
		return "18-plus"
	}
	return fmt.Sprintf("AgeBand(%d)", int(b))
}

// BandOf returns the band of someone aged years completed years. A negative
// age is treated as 0.
func BandOf(years int) AgeBand {
	switch {
	case years < 12:
		return Under12
	case years < 16:
		return From12To15
	case years < 18:
		return From16To17
	}
	return Adult
}

// Rights is what an age band means for access: the data the access policy
// applies on top of the roles' defaults. Every field is phrased so that true
// is the more restrictive (or more consent-demanding) reading, except
// OwnAccess, where false is.
type Rights struct {
	// OwnAccess: the child has their own login to their record.
	OwnAccess bool
	// OwnAccessWithConsent: without OwnAccess, the child may still be given
	// own access earlier where the environment is configured for it, but
	// never without a parent's or the dossierhouder's consent.
	OwnAccessWithConsent bool
	// SharingNeedsChildConsent: sharing a section with a helper needs the
	// child's consent (the child is a Consent.performer).
	SharingNeedsChildConsent bool
	// SharingNeedsParentConsent: sharing a section with a helper needs the
	// consent of a parent with authority (a Consent.performer).
	SharingNeedsParentConsent bool
	// ParentReadsOnlyConsented: a parent reads only what the child consents
	// to (an active Consent of the child for the parent), not the whole record.
	ParentReadsOnlyConsented bool
	// ParentalAccessEnds: access that rests on parental authority has ended;
	// a parent reads only what the young adult grants.
	ParentalAccessEnds bool
}

// bandRights is the table of DOMAIN.md's age rules.
var bandRights = map[AgeBand]Rights{
	Under12:    {OwnAccessWithConsent: true, SharingNeedsParentConsent: true},
	From12To15: {OwnAccess: true, SharingNeedsChildConsent: true, SharingNeedsParentConsent: true},
	From16To17: {OwnAccess: true, SharingNeedsChildConsent: true, ParentReadsOnlyConsented: true},
	Adult:      {OwnAccess: true, SharingNeedsChildConsent: true, ParentReadsOnlyConsented: true, ParentalAccessEnds: true},
}

// Rights returns what band b means for access. An invalid band gets the
// rights of Under12 combined with those of Adult: the most restrictive
// reading of every field.
func (b AgeBand) Rights() Rights {
	if r, ok := bandRights[b]; ok {
		return r
	}
	return bandRights[Under12].Meet(bandRights[Adult])
}

// Meet returns the most restrictive combination of r and o: the child has own
// access only if both give it, and every consent or restriction either asks
// for applies. It is used when the age is uncertain (a partial birth date).
func (r Rights) Meet(o Rights) Rights {
	m := Rights{
		OwnAccess:                 r.OwnAccess && o.OwnAccess,
		SharingNeedsChildConsent:  r.SharingNeedsChildConsent || o.SharingNeedsChildConsent,
		SharingNeedsParentConsent: r.SharingNeedsParentConsent || o.SharingNeedsParentConsent,
		ParentReadsOnlyConsented:  r.ParentReadsOnlyConsented || o.ParentReadsOnlyConsented,
		ParentalAccessEnds:        r.ParentalAccessEnds || o.ParentalAccessEnds,
	}
	m.OwnAccessWithConsent = !m.OwnAccess &&
		(r.OwnAccess || o.OwnAccess || r.OwnAccessWithConsent || o.OwnAccessWithConsent)
	return m
}

// Age is someone's age in completed years on a given day. For a full birth
// date Min equals Max; for a partial one (year, or year and month) Min is the
// age if born on the last possible day and Max the age if born on the first.
type Age struct {
	Min, Max int
}

// Certain reports whether the age is known exactly.
func (a Age) Certain() bool { return a.Min == a.Max }

// AgeAt returns the age at instant at, in completed years, of someone with
// the given FHIR birth date (YYYY, YYYY-MM or YYYY-MM-DD), with the calendar
// of time zone loc (the server's configured zone).
//
// The rules:
//   - A birthday counts from its start: someone born 2014-11-23 is 12 from
//     2026-11-23 00:00 local time in loc (at is converted to loc first).
//   - Someone born on 29 February becomes a year older on 1 March in a
//     common year (and on 29 February in a leap year). No Dutch statute
//     spells this out; it is how Dutch legal practice counts a year from
//     29 February (the year ends with 28 February, so the new year of age
//     begins on 1 March), it is what German law states explicitly
//     (BGB §187(2) with §188(2) and (3)), and it is the later of the two
//     candidate days, so no age threshold is passed early. docs/mapping.md
//     gives the sources.
//   - A partial birth date gives a range (see Age); AgeBandAt uses its Min
//     and RightsAt combines the rights at Min and Max.
//
// It returns an error of kind fhir.Invalid when birthDate is not a FHIR date,
// carries a time or lies after at, and a plain error (a programming error)
// when loc is nil.
func AgeAt(birthDate string, at time.Time, loc *time.Location) (Age, error) {
	if loc == nil {
		return Age{}, errors.New("mapping: age: no time zone given")
	}
	r, err := fhir.ParseDate(birthDate, loc)
	if err != nil {
		return Age{}, fmt.Errorf("mapping: age: %w", fhir.Errorf(fhir.Invalid, "Patient.birthDate", "%v", err))
	}
	if r.Precision > fhir.Day {
		return Age{}, fmt.Errorf("mapping: age: %w", fhir.Errorf(fhir.Invalid, "Patient.birthDate", "%q is a dateTime; a birth date is YYYY, YYYY-MM or YYYY-MM-DD", birthDate))
	}
	today := dateOf(at.In(loc))
	first := dateOf(r.Start)
	last := dateOf(r.End.AddDate(0, 0, -1))
	if today.before(first) {
		return Age{}, fmt.Errorf("mapping: age: %w", fhir.Errorf(fhir.Invalid, "Patient.birthDate", "birth date %s is after %s", birthDate, today))
	}
	if today.before(last) {
		last = today // born by today at the latest
	}
	return Age{Min: completedYears(last, today), Max: completedYears(first, today)}, nil
}

// AgeBandAt returns the age band at instant at of someone with the given FHIR
// birth date, read in time zone loc (see AgeAt for the rules). For a partial
// birth date it is the band of the youngest possible age: the band the
// person has certainly reached. Use RightsAt for access decisions, which
// also accounts for the oldest possible age. Errors are those of AgeAt.
func AgeBandAt(birthDate string, at time.Time, loc *time.Location) (AgeBand, error) {
	a, err := AgeAt(birthDate, at, loc)
	if err != nil {
		return 0, err
	}
	return BandOf(a.Min), nil
}

// RightsAt returns the rights at instant at of someone with the given FHIR
// birth date, read in time zone loc. For a partial birth date whose possible
// ages fall in two bands it returns the two bands' rights combined with
// Rights.Meet: own access only once it is certain, every consent and
// restriction as soon as it is possible. Errors are those of AgeAt.
func RightsAt(birthDate string, at time.Time, loc *time.Location) (Rights, error) {
	a, err := AgeAt(birthDate, at, loc)
	if err != nil {
		return Rights{}, err
	}
	return BandOf(a.Min).Rights().Meet(BandOf(a.Max).Rights()), nil
}

// civilDate is a calendar day without time or zone.
type civilDate struct {
	year  int
	month time.Month
	day   int
}

func dateOf(t time.Time) civilDate {
	y, m, d := t.Date()
	return civilDate{y, m, d}
}

func (d civilDate) before(o civilDate) bool {
	if d.year != o.year {
		return d.year < o.year
	}
	if d.month != o.month {
		return d.month < o.month
	}
	return d.day < o.day
}

func (d civilDate) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.year, int(d.month), d.day)
}

// completedYears returns the completed years from birth to day. In a common
// year a 29 February birthday falls on 1 March.
func completedYears(birth, day civilDate) int {
	years := day.year - birth.year
	birthday := civilDate{day.year, birth.month, birth.day}
	if birth.month == time.February && birth.day == 29 && !isLeap(day.year) {
		birthday = civilDate{day.year, time.March, 1}
	}
	if day.before(birthday) {
		years--
	}
	return years
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }
