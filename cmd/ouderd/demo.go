package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/mapping/family"
)

// loadDemo writes the demo family (mapping/family.Demo, made for today)
// when -demo is set and the database does not hold it yet: when
// Group/demo-gezin was never written. A demo family that is there, or that
// someone deleted, is left alone.
//
// It goes through the API's own write path, built from cfg (the API's
// configuration) with an internal operator as the caller in place of token
// authentication, in this process: the same validation, profile checks,
// indexing and one transaction as a client's Bundle. A failure is logged,
// not fatal: the server is useful without the demo.
func (m *Main) loadDemo(ctx context.Context, cfg rest.Config) {
	if !m.Config.Demo {
		return
	}
	if err := loadDemo(ctx, cfg, time.Now()); err != nil {
		m.Logger.Error("demo family not loaded", slog.String("error", err.Error()))
		return
	}
	m.Logger.Info("demo family present", slog.String("group", "Group/"+family.DemoGroup))
}

func loadDemo(ctx context.Context, cfg rest.Config, now time.Time) error {
	cfg.Authenticate = func(*http.Request) (*auth.Principal, error) {
		return &auth.Principal{Subject: "ouderd-demo-loader", Operator: true}, nil
	}
	api, err := rest.New(cfg)
	if err != nil {
		return err
	}
	h := api.Routes(func(*http.Request) error { return nil })
	status, body, err := serveInProcess(ctx, h, http.MethodGet, "/fhir/Group/"+family.DemoGroup, nil)
	switch {
	case err != nil:
		return err
	case status == http.StatusOK || status == http.StatusGone:
		return nil
	case status != http.StatusNotFound:
		return fmt.Errorf("look for Group/%s: HTTP %d: %s", family.DemoGroup, status, body)
	}
	f, err := family.Demo(now)
	if err != nil {
		return err
	}
	status, body, err = serveInProcess(ctx, h, http.MethodPost, "/fhir", f.Transaction())
	switch {
	case err != nil:
		return err
	case status != http.StatusOK:
		// Another instance starting on the same database may have won
		// the race: then the demo family is there all the same.
		if again, _, err := serveInProcess(ctx, h, http.MethodGet, "/fhir/Group/"+family.DemoGroup, nil); err == nil && again == http.StatusOK {
			return nil
		}
		return fmt.Errorf("the transaction was refused: HTTP %d: %s", status, body)
	}
	var answer struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Type != "transaction-response" {
		return fmt.Errorf("the answer is not a transaction-response: %s", body)
	}
	return nil
}

// serveInProcess serves one request through h in this process.
func serveInProcess(ctx context.Context, h http.Handler, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Prefer", "return=minimal")
	}
	var w recorder
	h.ServeHTTP(&w, req)
	return w.status, w.body.Bytes(), nil
}

// recorder is the http.ResponseWriter of an in-process request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
