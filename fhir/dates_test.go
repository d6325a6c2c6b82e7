package fhir

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	utc := time.UTC
	d := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		name       string
		in         string
		start, end time.Time
		prec       Precision
		wantErr    bool
	}{
		{name: "year", in: "2020", start: d("2020-01-01T00:00:00Z"), end: d("2021-01-01T00:00:00Z"), prec: Year},
		{name: "month", in: "2020-02", start: d("2020-02-01T00:00:00Z"), end: d("2020-03-01T00:00:00Z"), prec: Month},
		{name: "day", in: "2020-02-29", start: d("2020-02-29T00:00:00Z"), end: d("2020-03-01T00:00:00Z"), prec: Day},
		{name: "minute", in: "2020-02-29T10:30Z", start: d("2020-02-29T10:30:00Z"), end: d("2020-02-29T10:31:00Z"), prec: Minute},
		{name: "second offset", in: "2020-02-29T10:30:15+02:00", start: d("2020-02-29T08:30:15Z"), end: d("2020-02-29T08:30:16Z"), prec: Second},
		{name: "millis", in: "2020-02-29T10:30:15.123Z", start: d("2020-02-29T10:30:15.123Z"), end: d("2020-02-29T10:30:15.124Z"), prec: Fraction},
		{name: "no zone is server zone", in: "2020-02-29T10:30:15", start: d("2020-02-29T10:30:15Z"), end: d("2020-02-29T10:30:16Z"), prec: Second},
		{name: "feb 30", in: "2021-02-30", wantErr: true},
		{name: "month 13", in: "2021-13", wantErr: true},
		{name: "garbage", in: "yesterday", wantErr: true},
		{name: "bad offset", in: "2020-01-01T00:00:00+15:00", wantErr: true},
		{name: "hour 24", in: "2020-01-01T24:00:00Z", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDate(tt.in, utc)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseDate(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !got.Start.Equal(tt.start) || !got.End.Equal(tt.end) || got.Precision != tt.prec {
				t.Errorf("ParseDate(%q) = [%v, %v) p%d, want [%v, %v) p%d", tt.in, got.Start, got.End, got.Precision, tt.start, tt.end, tt.prec)
			}
		})
	}
}
