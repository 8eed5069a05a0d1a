package dynamo_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
)

// TestREADMEPriceTable holds README.md's cost-at-rest price table and its
// lease arithmetic against the prices and the estimate the code prints:
// one price table, in two places that cannot drift apart.
func TestREADMEPriceTable(t *testing.T) {
	raw, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	row := func(label string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(label) + ` \| \$?([0-9.]+) \|$`).FindStringSubmatch(readme)
		if m == nil {
			t.Fatalf("README.md has no price row %q", label)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		label string
		code  float64
	}{
		{"write request units, per million", leasedynamo.PricePerMillionWriteUnits},
		{"read request units, per million", leasedynamo.PricePerMillionReadUnits},
		{"hours in a billing month", leasedynamo.HoursPerMonth},
	} {
		if got := row(tc.label); got != tc.code {
			t.Errorf("README %q: %v, code %v", tc.label, got, tc.code)
		}
	}
	// The lease with its defaults and one standby, as the README states it.
	c := leasedynamo.EstimateCost(leasedynamo.Config{}, 1)
	writes := fmt.Sprintf("≈ %.2f M writes a month", c.RenewalsPerHour*leasedynamo.HoursPerMonth/1e6)
	reads := fmt.Sprintf("≈ %.2f M reads a month", c.PollsPerHour*leasedynamo.HoursPerMonth/1e6)
	flat := strings.Join(strings.Fields(readme), " ")
	for _, want := range []string{writes, reads} {
		if !strings.Contains(flat, want) {
			t.Errorf("README.md does not say %q (the estimate with the default lease settings)", want)
		}
	}
}
