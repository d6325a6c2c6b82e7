package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/ig"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/postgres"
)

// installGuide makes the store hold the implementation guide's conformance
// resources (ig.Resources), so that GET /fhir/StructureDefinition,
// /fhir/CodeSystem, /fhir/ValueSet, /fhir/SearchParameter and the rest find
// them. Each resource keeps its id; it is created when absent and updated
// only when its content differs from the stored version, so a restart
// writes nothing. Everything is written in one transaction under a lock, so
// instances starting together install once, through the same parser as
// every write (validation and index entries). When a SearchParameter was
// written, the registry is reloaded, the other instances are told, and the
// types it applies to are reindexed. It runs as the server itself
// (unrestricted access). It fails when the database fails.
func (m *Main) installGuide(ctx context.Context, store *postgres.Store, parser *conformance.Parser, reload func(context.Context) error) error {
	written, bases, err := installGuide(search.WithAccess(ctx, search.Unrestricted()), store, parser)
	if err != nil {
		return err
	}
	m.Logger.Info("implementation guide installed", slog.String("version", ig.Version), slog.Int("written", written))
	if len(bases) == 0 {
		return nil
	}
	if err := reload(ctx); err != nil {
		return err
	}
	if err := store.AnnounceSearchParams(ctx); err != nil {
		return err
	}
	id, err := store.StartReindex(ctx, "implementation guide "+ig.Version, expandTypes(bases))
	if err != nil {
		return err
	}
	m.Logger.Info("reindex queued", slog.Int64("job", id), slog.Any("types", bases))
	return nil
}

// installGuide writes the guide's resources that are absent or changed, and
// returns how many it wrote and the bases of the SearchParameters among
// them.
func installGuide(ctx context.Context, store *postgres.Store, parser *conformance.Parser) (written int, bases []string, err error) {
	resources, err := ig.Resources()
	if err != nil {
		return 0, nil, err
	}
	err = store.Transaction(ctx, func(tx *postgres.Store) error {
		written, bases = 0, nil
		if err := tx.LockKey(ctx, "implementation guide"); err != nil {
			return err
		}
		for _, r := range resources {
			cur, err := tx.Read(ctx, r.Type, r.ID)
			switch {
			case err == nil:
				same, err := sameContent(cur.Body, r.JSON)
				if err != nil {
					return fmt.Errorf("install %s/%s: %w", r.Type, r.ID, err)
				}
				if same {
					continue
				}
			case fhir.IsKind(err, fhir.NotFound), fhir.IsKind(err, fhir.Gone):
			default:
				return fmt.Errorf("install %s/%s: %w", r.Type, r.ID, err)
			}
			res, err := parser.Parse(r.JSON, r.Type)
			if err != nil {
				return fmt.Errorf("install %s/%s: %w", r.Type, r.ID, err)
			}
			if _, err := tx.Update(ctx, fhir.Write{Type: r.Type, ID: r.ID, Render: res.Render, Index: res.Index}); err != nil {
				return fmt.Errorf("install %s/%s: %w", r.Type, r.ID, err)
			}
			written++
			if r.Type == "SearchParameter" {
				var sp struct {
					Base []string `json:"base"`
				}
				if err := json.Unmarshal(r.JSON, &sp); err != nil {
					return fmt.Errorf("install %s/%s: %w", r.Type, r.ID, err)
				}
				bases = append(bases, sp.Base...)
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("install the implementation guide: %w", err)
	}
	return written, bases, nil
}

// sameContent reports whether a stored resource holds exactly the guide's
// version: the same members apart from the meta the server stamps.
func sameContent(stored, guide []byte) (bool, error) {
	decode := func(b []byte) (map[string]any, error) {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, err
		}
		delete(m, "meta")
		return m, nil
	}
	a, err := decode(stored)
	if err != nil {
		return false, err
	}
	b, err := decode(guide)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(a, b), nil
}
