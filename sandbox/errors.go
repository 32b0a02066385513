package sandbox

import (
	"net/http"
	"strconv"
)

// apiError is one JSON:API error object as Outreach writes it.
type apiError struct {
	ID      string `json:"id,omitempty"`
	Title   string `json:"title,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Details string `json:"details,omitempty"` // Outreach's 415 body spells it this way
	Code    string `json:"code,omitempty"`
	Source  *struct {
		Pointer   string `json:"pointer,omitempty"`
		Parameter string `json:"parameter,omitempty"`
	} `json:"source,omitempty"`
}

func (e apiError) withPointer(p string) apiError {
	e.Source = &struct {
		Pointer   string `json:"pointer,omitempty"`
		Parameter string `json:"parameter,omitempty"`
	}{Pointer: p}
	return e
}

func (e apiError) withParameter(p string) apiError {
	e.Source = &struct {
		Pointer   string `json:"pointer,omitempty"`
		Parameter string `json:"parameter,omitempty"`
	}{Parameter: p}
	return e
}

const mediaType = "application/vnd.api+json"

func writeErrors(w http.ResponseWriter, status int, errs ...apiError) {
	writeJSON(w, status, map[string]any{"errors": errs})
}

func notFound(w http.ResponseWriter, typ string, id int64) {
	writeErrors(w, http.StatusNotFound, apiError{ID: "resourceNotFound", Title: "Resource Not Found",
		Detail: "Could not find '" + typ + "' with ID '" + strconv.FormatInt(id, 10) + "'."})
}

func routeNotFound(w http.ResponseWriter) {
	writeErrors(w, http.StatusNotFound, apiError{ID: "routeNotFound", Title: "Route Not Found",
		Detail: "The request path does not match any known resource endpoints."})
}

func validationError(w http.ResponseWriter, pointer, detail string) {
	writeErrors(w, http.StatusUnprocessableEntity, apiError{ID: "validationError", Title: "Validation Error", Detail: detail}.withPointer(pointer))
}

// writeGateway401 answers like Outreach's gateway for a token it cannot
// use: not a JSON:API document.
func writeGateway401(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	writeJSONType(w, http.StatusUnauthorized, "application/json", map[string]string{"error": "Invalid JWT token.", "description": description})
}
