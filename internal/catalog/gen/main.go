// Command gen writes the resource catalog (catalog_gen.go) from Outreach's
// published OpenAPI document.
//
//	go run ./gen -spec path/to/openapi.json -out catalog_gen.go
//
// Outreach encodes attribute flags as badge images in descriptions
// (readonly, writeonly, filterable, sortable) and relationship filters as
// prose ("You can use attributes id and name to filter ..."); both are
// parsed here so that no one copies a field list by hand.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

func main() {
	spec := flag.String("spec", "", "path to Outreach's openapi.json")
	out := flag.String("out", "catalog_gen.go", "output Go file")
	flag.Parse()
	if *spec == "" {
		log.Fatal("gen: -spec is required (the path to Outreach's openapi.json)")
	}
	raw, err := os.ReadFile(*spec)
	if err != nil {
		log.Fatalf("gen: %v", err)
	}
	var doc openAPI
	if err := json.Unmarshal(raw, &doc); err != nil {
		log.Fatalf("gen: decode %s: %v", *spec, err)
	}
	resources, err := build(&doc)
	if err != nil {
		log.Fatalf("gen: %v", err)
	}
	src, err := render(resources)
	if err != nil {
		log.Fatalf("gen: %v", err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatalf("gen: %v", err)
	}
}

type openAPI struct {
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		Schemas map[string]*schema `json:"schemas"`
	} `json:"components"`
}

type operation struct {
	RequestBody *struct {
		Content map[string]struct {
			Schema *schema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct {
			Schema *schema `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

type schema struct {
	Ref         string             `json:"$ref"`
	Type        string             `json:"type"`
	Format      string             `json:"format"`
	Description string             `json:"description"`
	Nullable    bool               `json:"nullable"`
	MaxLength   int                `json:"maxLength"`
	Enum        []string           `json:"enum"`
	Items       *schema            `json:"items"`
	Properties  map[string]*schema `json:"properties"`
}

type resource struct {
	Type, Path, Summary        string
	List, Get, Create, Update  bool
	Delete                     bool
	MemberActions, CollActions []string
	Attributes                 []attribute
	Relationships              []relationship
}

type attribute struct {
	Name, Type, Items, Format string
	Nullable                  bool
	MaxLength                 int
	ReadOnly, WriteOnly       bool
	Filterable, Sortable      bool
	Values                    []string
}

type relationship struct {
	Name                string
	Targets             []string
	ToMany, LinksOnly   bool
	ReadOnly            bool
	FilterBy            []string
	FilterByKnown, None bool
}

var (
	refRE    = regexp.MustCompile(`#/components/schemas/(\w+)Response"`)
	attrsRE  = regexp.MustCompile(`"attributes":\{"\$ref":"#/components/schemas/(\w+)"`)
	badgeRE  = regexp.MustCompile(`<img src=https://developers\.outreach\.io/badges/(\w+)\.svg>`)
	quotedRE = regexp.MustCompile(`"([^"]{1,40})"|'([A-Za-z0-9_*\- ]{1,40})'`)
	sepRE    = regexp.MustCompile(`^[\s,]*(?:or\s+)?$`)
	useRE    = regexp.MustCompile(`You can use (?:only the attribute|attributes) ([\w ,]+?) to filter`)
)

func build(doc *openAPI) ([]resource, error) {
	byPath := map[string]*resource{}
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		ops := doc.Paths[p]
		segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		base := segs[0]
		r := byPath[base]
		if r == nil {
			r = &resource{Path: base}
			byPath[base] = r
		}
		for method, op := range ops {
			if r.Type == "" {
				r.Type = resourceType(op)
			}
			switch {
			case len(segs) == 1 && method == "get":
				r.List = true
			case len(segs) == 1 && method == "post":
				r.Create = true
			case len(segs) == 2 && method == "get":
				r.Get = true
			case len(segs) == 2 && method == "patch":
				r.Update = true
			case len(segs) == 2 && method == "delete":
				r.Delete = true
			case len(segs) == 4 && segs[2] == "actions":
				r.MemberActions = append(r.MemberActions, segs[3])
			case len(segs) == 3 && segs[1] == "actions":
				r.CollActions = append(r.CollActions, segs[2])
			}
		}
	}
	var out []resource
	for _, r := range byPath {
		if r.Type == "" {
			return nil, fmt.Errorf("cannot tell the resource type of /%s", r.Path)
		}
		s := doc.Components.Schemas[r.Type]
		if s == nil {
			return nil, fmt.Errorf("no schema %q for /%s", r.Type, r.Path)
		}
		r.Summary = strings.TrimSpace(s.Description)
		for name, a := range s.Properties {
			r.Attributes = append(r.Attributes, toAttribute(name, a))
		}
		sort.Slice(r.Attributes, func(i, j int) bool { return r.Attributes[i].Name < r.Attributes[j].Name })
		if rs := doc.Components.Schemas[r.Type+"Relationships"]; rs != nil {
			for name, rel := range rs.Properties {
				r.Relationships = append(r.Relationships, toRelationship(name, rel, doc.Components.Schemas))
			}
		}
		sort.Slice(r.Relationships, func(i, j int) bool { return r.Relationships[i].Name < r.Relationships[j].Name })
		sort.Strings(r.MemberActions)
		sort.Strings(r.CollActions)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

// resourceType finds the singular type an operation serves, from its
// response ("prospectResponse") or request body ("attributes": prospect).
func resourceType(op operation) string {
	raw, _ := json.Marshal(op)
	if m := refRE.FindSubmatch(raw); m != nil {
		return string(m[1])
	}
	if m := attrsRE.FindSubmatch(raw); m != nil {
		return string(m[1])
	}
	return ""
}

func badges(desc string) map[string]bool {
	out := map[string]bool{}
	for _, m := range badgeRE.FindAllStringSubmatch(desc, -1) {
		out[m[1]] = true
	}
	return out
}

func toAttribute(name string, s *schema) attribute {
	b := badges(s.Description)
	a := attribute{
		Name: name, Type: s.Type, Format: s.Format, Nullable: s.Nullable, MaxLength: s.MaxLength,
		ReadOnly: b["readonly"], WriteOnly: b["writeonly"], Filterable: b["filterable"], Sortable: b["sortable"],
	}
	switch {
	case s.Type == "string" && (s.Format == "date-time" || s.Format == "date"):
		a.Type, a.Format = s.Format, ""
	case s.Type == "array" && s.Items != nil:
		switch {
		case s.Items.Format == "contact histogram":
			a.Items = "array"
		case s.Items.Type != "":
			a.Items = s.Items.Type
			if s.Items.Format != "" {
				a.Format = s.Items.Format
			}
		default:
			a.Items = "string"
		}
	case s.Type == "":
		a.Type = "string"
	}
	if a.Type == "string" && a.Format == "" {
		a.Values = values(s.Description)
	}
	// Where the values a description names do not fit the declared
	// maxLength (sequence.primaryReplyAction: "finish", "continue" or
	// "pause", maxLength 4), the document contradicts itself; Outreach
	// serves and accepts the named values, so the limit is dropped.
	for _, v := range a.Values {
		if a.MaxLength > 0 && utf8.RuneCountInString(v) > a.MaxLength {
			a.MaxLength = 0
		}
	}
	return a
}

// values extracts an explicit list of values from a description such as
// `Can be 'pending', 'incomplete', or 'complete'` or `"inbound" or
// "outbound"`: the longest run of quoted words joined only by commas and
// "or".
func values(desc string) []string {
	desc = badgeRE.ReplaceAllString(desc, "")
	var best, run []string
	prevEnd := -1
	for _, m := range quotedRE.FindAllStringSubmatchIndex(desc, -1) {
		var word string
		if m[2] >= 0 {
			word = desc[m[2]:m[3]]
		} else {
			word = desc[m[4]:m[5]]
		}
		word = strings.TrimRight(word, ".,")
		if word == "null" {
			// ("opted_in", "opted_out", "null"): JSON null, not a string.
			prevEnd = m[1]
			continue
		}
		if prevEnd < 0 || !sepRE.MatchString(desc[prevEnd:m[0]]) {
			run = nil
		}
		if !slices.Contains(run, word) {
			run = append(run, word)
		}
		prevEnd = m[1]
		if len(run) > len(best) {
			best = slices.Clone(run)
		}
	}
	if len(best) < 2 {
		return nil
	}
	return best
}

func toRelationship(name string, s *schema, schemas map[string]*schema) relationship {
	b := badges(s.Description)
	r := relationship{Name: name, ReadOnly: b["readonly"]}
	data := s.Properties["data"]
	switch {
	case data == nil:
		r.LinksOnly, r.ToMany = true, true
		for _, t := range []string{singular(name), strings.TrimSuffix(name, "es")} { // mailAliases, batches
			if schemas[t] != nil || schemas[t+"Relationships"] != nil {
				r.Targets = []string{t}
				break
			}
		}
	case data.Type == "array":
		r.ToMany = true
		if data.Items != nil && data.Items.Properties["type"] != nil {
			r.Targets = data.Items.Properties["type"].Enum
		}
	default:
		if data.Properties["type"] != nil {
			r.Targets = data.Properties["type"].Enum
		}
	}
	desc := badgeRE.ReplaceAllString(s.Description, "")
	switch m := useRE.FindStringSubmatch(desc); {
	case strings.Contains(desc, "cannot be used as a filter"):
	case strings.Contains(desc, "any filterable attribute"):
		r.FilterBy = []string{"*"}
	case m != nil:
		for _, f := range strings.FieldsFunc(strings.ReplaceAll(m[1], " and ", ","), func(r rune) bool { return r == ',' || r == ' ' }) {
			r.FilterBy = append(r.FilterBy, f)
		}
	default:
		// The description is silent: Outreach allows filtering by the
		// related id on relationships that are not documented otherwise.
		r.FilterBy = []string{"id"}
	}
	return r
}

func singular(plural string) string {
	switch {
	case strings.HasSuffix(plural, "ies"):
		return strings.TrimSuffix(plural, "ies") + "y"
	case strings.HasSuffix(plural, "sses"), strings.HasSuffix(plural, "xes"):
		return strings.TrimSuffix(plural, "es")
	case strings.HasSuffix(plural, "s"):
		return strings.TrimSuffix(plural, "s")
	}
	return plural
}

var typeConst = map[string]string{
	"string": "TypeString", "integer": "TypeInteger", "number": "TypeNumber", "boolean": "TypeBoolean",
	"date-time": "TypeDateTime", "date": "TypeDate", "array": "TypeArray", "object": "TypeObject",
}

func render(rs []resource) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by go run ./gen from Outreach's OpenAPI document; DO NOT EDIT.\n\n")
	b.WriteString("package catalog\n\n")
	b.WriteString("// generated returns the resources described by Outreach's OpenAPI document.\n")
	b.WriteString("func generated() []Resource {\n\treturn []Resource{\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "{Type: %q, Path: %q, Summary: %q,\n", r.Type, r.Path, r.Summary)
		fmt.Fprintf(&b, "Ops: Operations{List: %v, Get: %v, Create: %v, Update: %v, Delete: %v},\n", r.List, r.Get, r.Create, r.Update, r.Delete)
		if len(r.MemberActions) > 0 {
			fmt.Fprintf(&b, "MemberActions: %s,\n", strs(r.MemberActions))
		}
		if len(r.CollActions) > 0 {
			fmt.Fprintf(&b, "CollectionActions: %s,\n", strs(r.CollActions))
		}
		b.WriteString("Attributes: []Attribute{\n")
		for _, a := range r.Attributes {
			fmt.Fprintf(&b, "{Name: %q, Type: %s", a.Name, typeConst[a.Type])
			if a.Items != "" {
				fmt.Fprintf(&b, ", Items: %s", typeConst[a.Items])
			}
			if a.Format != "" {
				fmt.Fprintf(&b, ", Format: %q", a.Format)
			}
			flags := []struct {
				on   bool
				name string
			}{{a.Nullable, "Nullable"}, {a.ReadOnly, "ReadOnly"}, {a.WriteOnly, "WriteOnly"}, {a.Filterable, "Filterable"}, {a.Sortable, "Sortable"}}
			for _, f := range flags {
				if f.on {
					fmt.Fprintf(&b, ", %s: true", f.name)
				}
			}
			if a.MaxLength > 0 {
				fmt.Fprintf(&b, ", MaxLength: %d", a.MaxLength)
			}
			if len(a.Values) > 0 {
				fmt.Fprintf(&b, ", Values: %s", strs(a.Values))
			}
			b.WriteString("},\n")
		}
		b.WriteString("},\nRelationships: []Relationship{\n")
		for _, rel := range r.Relationships {
			fmt.Fprintf(&b, "{Name: %q", rel.Name)
			if len(rel.Targets) > 0 {
				fmt.Fprintf(&b, ", Targets: %s", strs(rel.Targets))
			}
			if rel.ToMany {
				b.WriteString(", ToMany: true")
			}
			if rel.LinksOnly {
				b.WriteString(", LinksOnly: true")
			}
			if rel.ReadOnly {
				b.WriteString(", ReadOnly: true")
			}
			if len(rel.FilterBy) > 0 {
				fmt.Fprintf(&b, ", FilterBy: %s", strs(rel.FilterBy))
			}
			b.WriteString("},\n")
		}
		b.WriteString("},\n},\n")
	}
	b.WriteString("}\n}\n")
	return format.Source(b.Bytes())
}

func strs(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[]string{" + strings.Join(q, ", ") + "}"
}
