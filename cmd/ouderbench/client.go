package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// fhirJSON is the FHIR JSON media type, sent as Accept and Content-Type.
const fhirJSON = "application/fhir+json"

// checkTarget parses a base URL and refuses it unless it is http(s) on a
// loopback host (127.0.0.0/8, ::1 or the name localhost) or allowRemote is
// set. Names other than localhost are not resolved: "localhost.example.com"
// is remote. It returns the URL without a trailing slash.
func checkTarget(raw string, allowRemote bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("base URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("base URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("base URL %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("base URL %q: must not have a query, fragment or user info", raw)
	}
	if !allowRemote && !isLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("base URL %q is not a loopback address; pass -allow-remote to load a remote server", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// isLoopbackHost reports whether host (without port) is localhost or a
// loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// client sends FHIR requests to one base URL. It is safe for concurrent use.
type client struct {
	base  string // no trailing slash
	token string // bearer token; empty for none
	hc    *http.Client
}

// newClient returns a client for base that keeps up to conns idle connections
// (one per worker, so the benchmark does not measure connection set-up) and
// gives up on a request after timeout.
func newClient(base, token string, conns int, timeout time.Duration) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns * 2
	tr.MaxIdleConnsPerHost = conns * 2
	return &client{
		base:  base,
		token: token,
		hc: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			// A benchmark measures what the server answers; following a
			// redirect would time two requests as one.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// response is what the benchmark keeps of an HTTP response.
type response struct {
	status   int
	location string
	body     []byte // only when asked for
}

// do sends one request to base + "/" + path (path may carry an encoded query)
// and reads the whole response body, keeping it if keep is set. The error is
// a transport error (no HTTP response); an HTTP error status is not an error.
func (c *client) do(ctx context.Context, method, path string, body []byte, keep bool) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	target := c.base
	if path != "" {
		target += "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", fhirJSON)
	if body != nil {
		req.Header.Set("Content-Type", fhirJSON)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	r := response{status: res.StatusCode, location: res.Header.Get("Location")}
	if keep {
		r.body, err = io.ReadAll(res.Body)
	} else {
		_, err = io.Copy(io.Discard, res.Body)
	}
	if err != nil {
		return r, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return r, nil
}

// ok reports whether the status is a success.
func (r response) ok() bool { return r.status >= 200 && r.status < 300 }

// idPattern is the FHIR R4 id syntax.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// createdID returns the logical id of a resource of type typ that a create
// answered with: the body's id when the server returned the resource,
// otherwise the id in the Location header ({base}/{typ}/{id}/_history/{v}).
// It returns "" when neither names one.
func createdID(typ string, r response) string {
	if len(r.body) > 0 {
		var v struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if json.Unmarshal(r.body, &v) == nil && v.ResourceType == typ && idPattern.MatchString(v.ID) {
			return v.ID
		}
	}
	if r.location == "" {
		return ""
	}
	path := r.location
	if u, err := url.Parse(r.location); err == nil {
		path = u.Path
	}
	segs := strings.Split(path, "/")
	for i := len(segs) - 2; i >= 0; i-- {
		if segs[i] == typ && idPattern.MatchString(segs[i+1]) {
			return segs[i+1]
		}
	}
	return ""
}

// snippet returns the start of a response body for an error message.
func snippet(b []byte) string {
	const max = 300
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
