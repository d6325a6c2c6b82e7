package mapping

import (
	"testing"
	"time"
	_ "time/tzdata" // Europe/Amsterdam without relying on the host's zoneinfo

	"github.com/digitaleouder/ouder/fhir"
)

func amsterdam(tb testing.TB) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// TestAgeBandAt checks the band on the day before and on the birthday for 12,
// 16 and 18, at the first and last instants of those days in Amsterdam
// time, including leap-day births.
func TestAgeBandAt(t *testing.T) {
	t.Parallel()
	loc := amsterdam(t)
	local := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name  string
		birth string
		at    time.Time
		want  AgeBand
		age   int
	}{
		// Turning 12: DOMAIN.md's example.
		{"12: day before, last second", "2014-11-23", local("2026-11-22 23:59:59"), Under12, 11},
		{"12: birthday, first second", "2014-11-23", local("2026-11-23 00:00:00"), From12To15, 12},
		{"12: birthday, in UTC still the day before", "2014-11-23", time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC), From12To15, 12},
		{"12: birthday ends, in UTC already the next day", "2014-11-23", time.Date(2026, 11, 22, 22, 59, 59, 0, time.UTC), Under12, 11},
		// Turning 16, in summer time.
		{"16: day before", "2010-06-15", local("2026-06-14 23:59:59"), From12To15, 15},
		{"16: birthday", "2010-06-15", local("2026-06-15 00:00:00"), From16To17, 16},
		// Turning 18.
		{"18: day before", "2008-01-01", local("2025-12-31 23:59:59"), From16To17, 17},
		{"18: birthday", "2008-01-01", local("2026-01-01 00:00:00"), Adult, 18},
		{"18: decades later", "1950-01-01", local("2026-01-01 00:00:00"), Adult, 76},
		// Born on 29 February: a year older on 29 February in a leap year,
		// on 1 March in a common year.
		{"leap 12 in a leap year: 28 Feb", "2012-02-29", local("2024-02-28 23:59:59"), Under12, 11},
		{"leap 12 in a leap year: 29 Feb", "2012-02-29", local("2024-02-29 00:00:00"), From12To15, 12},
		{"leap 16 in a leap year: 28 Feb", "2008-02-29", local("2024-02-28 12:00:00"), From12To15, 15},
		{"leap 16 in a leap year: 29 Feb", "2008-02-29", local("2024-02-29 00:00:00"), From16To17, 16},
		{"leap 16 in a common year: 28 Feb", "2012-02-29", local("2028-02-28 23:59:59"), From12To15, 15},
		{"leap 18 in a common year: 28 Feb", "2008-02-29", local("2026-02-28 23:59:59"), From16To17, 17},
		{"leap 18 in a common year: 1 Mar", "2008-02-29", local("2026-03-01 00:00:00"), Adult, 18},
		{"leap 12 in a common year: 1 Mar", "2000-02-29", local("2012-03-01 00:00:00"), From12To15, 12},
		{"leap after a common-year birthday", "2012-02-29", local("2025-03-01 00:00:00"), From12To15, 13},
		{"leap on 28 Feb the year after", "2012-02-29", local("2013-02-28 23:59:59"), Under12, 0},
		{"born 28 Feb is older on 28 Feb", "2014-02-28", local("2026-02-28 00:00:00"), From12To15, 12},
		{"born 1 Mar in a leap year", "2012-03-01", local("2024-02-29 23:59:59"), Under12, 11},
		// Born today.
		{"newborn", "2026-05-01", local("2026-05-01 00:00:00"), Under12, 0},
		// Partial dates: the youngest possible age.
		{"year only: may still be 11", "2014", local("2026-06-01 12:00:00"), Under12, 11},
		{"year only: 12 for certain", "2014", local("2026-12-31 00:00:00"), From12To15, 12},
		{"year only: 31 Dec the year before", "2014", local("2026-12-30 23:59:59"), Under12, 11},
		{"month only: may still be 11", "2014-11", local("2026-11-23 00:00:00"), Under12, 11},
		{"month only: 12 for certain", "2014-11", local("2026-11-30 00:00:00"), From12To15, 12},
		{"month only, February of a leap year", "2008-02", local("2026-02-28 23:59:59"), From16To17, 17},
		{"month only, February of a leap year, 1 Mar", "2008-02", local("2026-03-01 00:00:00"), Adult, 18},
		{"year of birth is this year", "2026", local("2026-03-01 00:00:00"), Under12, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := AgeBandAt(tt.birth, tt.at, loc)
			if err != nil {
				t.Fatalf("AgeBandAt: %v", err)
			}
			if got != tt.want {
				t.Errorf("AgeBandAt(%s, %s) = %s, want %s", tt.birth, tt.at, got, tt.want)
			}
			age, err := AgeAt(tt.birth, tt.at, loc)
			if err != nil {
				t.Fatalf("AgeAt: %v", err)
			}
			if age.Min != tt.age {
				t.Errorf("AgeAt(%s, %s).Min = %d, want %d", tt.birth, tt.at, age.Min, tt.age)
			}
		})
	}
}

func TestAgeAtPartial(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		birth string
		want  Age
	}{
		{"2014-06-01", Age{12, 12}},
		{"2014-06", Age{11, 12}},
		{"2014", Age{11, 12}},
		{"2014-01", Age{12, 12}},
		{"2026", Age{0, 0}},
		{"2026-06", Age{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.birth, func(t *testing.T) {
			t.Parallel()
			got, err := AgeAt(tt.birth, at, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("AgeAt(%s) = %+v, want %+v", tt.birth, got, tt.want)
			}
			if got.Certain() != (tt.want.Min == tt.want.Max) {
				t.Errorf("Certain() = %v", got.Certain())
			}
		})
	}
}

func TestAgeAtErrors(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, birth := range []string{"", "yesterday", "2014-13", "2014-02-30", "2013-02-29", "2014-11-23T10:00:00Z", "2026-06-02", "2027"} {
		t.Run(birth, func(t *testing.T) {
			t.Parallel()
			_, err := AgeBandAt(birth, at, time.UTC)
			if !fhir.IsKind(err, fhir.Invalid) {
				t.Errorf("AgeBandAt(%q) error = %v, want kind Invalid", birth, err)
			}
		})
	}
	if _, err := AgeAt("2014-11-23", at, nil); err == nil {
		t.Error("AgeAt with nil location: no error")
	}
}

// TestBandRights checks each band's rights against DOMAIN.md's age rules.
func TestBandRights(t *testing.T) {
	t.Parallel()
	tests := []struct {
		band AgeBand
		want Rights
	}{
		// Parents with authority decide and see everything; own access only
		// earlier with a parent's or the dossierhouder's consent.
		{Under12, Rights{OwnAccessWithConsent: true, SharingNeedsParentConsent: true}},
		// Own access; sharing needs the child's consent and a parent's.
		{From12To15, Rights{OwnAccess: true, SharingNeedsChildConsent: true, SharingNeedsParentConsent: true}},
		// The child decides alone; a parent reads only what the child consents to.
		{From16To17, Rights{OwnAccess: true, SharingNeedsChildConsent: true, ParentReadsOnlyConsented: true}},
		// Parental access ends unless the young adult grants it.
		{Adult, Rights{OwnAccess: true, SharingNeedsChildConsent: true, ParentReadsOnlyConsented: true, ParentalAccessEnds: true}},
	}
	for _, tt := range tests {
		t.Run(tt.band.String(), func(t *testing.T) {
			t.Parallel()
			if got := tt.band.Rights(); got != tt.want {
				t.Errorf("%s.Rights() = %+v, want %+v", tt.band, got, tt.want)
			}
		})
	}
	strictest := Rights{OwnAccessWithConsent: true, SharingNeedsChildConsent: true, SharingNeedsParentConsent: true, ParentReadsOnlyConsented: true, ParentalAccessEnds: true}
	if got := AgeBand(0).Rights(); got != strictest {
		t.Errorf("invalid band Rights() = %+v, want %+v", got, strictest)
	}
}

// TestRightsAt checks that an uncertain age gets the most restrictive
// combination of the bands it may be in.
func TestRightsAt(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		birth string
		want  Rights
	}{
		{"certain 12", "2014-05-01", From12To15.Rights()},
		{"11 or 12", "2014", Rights{OwnAccessWithConsent: true, SharingNeedsChildConsent: true, SharingNeedsParentConsent: true}},
		{"15 or 16", "2010", Rights{OwnAccess: true, SharingNeedsChildConsent: true, SharingNeedsParentConsent: true, ParentReadsOnlyConsented: true}},
		{"17 or 18", "2008", Rights{OwnAccess: true, SharingNeedsChildConsent: true, ParentReadsOnlyConsented: true, ParentalAccessEnds: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := RightsAt(tt.birth, at, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("RightsAt(%s) = %+v, want %+v", tt.birth, got, tt.want)
			}
		})
	}
	if _, err := RightsAt("2014-13", at, time.UTC); !fhir.IsKind(err, fhir.Invalid) {
		t.Errorf("RightsAt with a bad date: err = %v", err)
	}
}

func TestBandOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		years int
		want  AgeBand
		code  string
	}{
		{-1, Under12, "under-12"}, {0, Under12, "under-12"}, {11, Under12, "under-12"},
		{12, From12To15, "12-15"}, {15, From12To15, "12-15"},
		{16, From16To17, "16-17"}, {17, From16To17, "16-17"},
		{18, Adult, "18-plus"}, {120, Adult, "18-plus"},
	}
	for _, tt := range tests {
		if got := BandOf(tt.years); got != tt.want || got.String() != tt.code {
			t.Errorf("BandOf(%d) = %s, want %s", tt.years, got, tt.code)
		}
	}
	if s := AgeBand(9).String(); s != "AgeBand(9)" {
		t.Errorf("String of an invalid band = %q", s)
	}
}
