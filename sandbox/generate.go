package sandbox

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// Seeded data. Every resource type gets a base population of records with
// ids 1..count; record id is a pure function of (seed, type, id). createdAt
// grows with the id across the data span (years), updatedAt falls between
// createdAt and the span's end. A to-one relationship of record id points at
// ((id-1) mod n)+1 of its target type (n = the target's count), so the
// inverse (all records pointing at a parent) is computable without an index.

// counts returns the base population of every type for an org with the
// given number of prospects.
func counts(prospects int64, cat *catalog.Catalog) map[string]int64 {
	p := max(prospects, 0)
	clamp := func(v, lo, hi int64) int64 { return min(max(v, lo), hi) }
	users := clamp(p/200, 5, 2000)
	seqs := clamp(p/100, 3, 2000)
	c := map[string]int64{
		"prospect": p, "emailAddress": p, "phoneNumber": p, "event": p, "mailing": p,
		"account": clamp(p/10, 5, p+5), "opportunity": clamp(p/20, 3, p+3),
		"opportunityProspectRole": clamp(p/20, 3, p+3), "sequenceState": p / 2, "task": p / 2,
		"call": p / 4, "prospectNote": p / 10, "accountNote": p / 20, "auditLog": p / 10,
		"user": users, "mailbox": users, "mailAlias": users / 2, "team": clamp(users/5, 2, 100),
		"sequence": seqs, "sequenceStep": seqs * 4, "sequenceTemplate": seqs * 4,
		"template": clamp(p/100, 5, 1000), "snippet": clamp(p/200, 5, 500),
		"stage": 8, "opportunityStage": 7, "persona": 6, "callDisposition": 6, "callPurpose": 5,
		"taskPriority": 3, "taskDisposition": 5, "taskPurpose": 5, "profile": 3, "role": 5, "ruleset": 3,
		"contentCategory": 5, "contentCategoryMembership": 20, "contentCategoryOwnership": 10,
		"duty": 5, "batch": 3, "batchItem": 12, "complianceRequest": 2, "favorite": 5,
		"kaiaRecording": 5, "product": 10, "purchase": 20, "recipient": 20, "orgSetting": 1,
	}
	out := make(map[string]int64, len(c))
	for _, r := range cat.Resources() {
		if !r.Ops.List && !r.Ops.Get {
			continue // create-only types (customDuties, kaiaVoiceImports) hold nothing to read
		}
		out[r.Type] = c[r.Type]
	}
	return out
}

// derivedRels make seeded relationships agree with each other: the value of
// type.rel is the value of via.rel2 on the record type.via points at.
var derivedRels = map[string]map[string][2]string{
	"sequenceState":    {"account": {"prospect", "account"}},
	"mailing":          {"prospect": {"sequenceState", "prospect"}, "sequence": {"sequenceState", "sequence"}, "mailbox": {"sequenceState", "mailbox"}},
	"task":             {"account": {"prospect", "account"}},
	"call":             {"account": {"prospect", "account"}},
	"sequenceTemplate": {"sequence": {"sequenceStep", "sequence"}},
}

// alwaysSetRels are to-one relationships that seeded records always fill;
// other to-one relationships are null for about half the records.
var alwaysSetRels = map[string]bool{
	"account": true, "prospect": true, "sequence": true, "user": true, "owner": true, "mailbox": true,
	"opportunity": true, "sequenceState": true, "sequenceStep": true, "stage": true, "opportunityStage": true,
	"creator": true, "updater": true, "template": true, "callDisposition": true, "callPurpose": true,
	"taskPriority": true, "primaryProspect": true, "contentCategory": true, "ruleset": true, "profile": true,
}

// plan generates the seeded records of one type.
type plan struct {
	res      *catalog.Resource
	seed     uint64
	count    int64
	spanFrom int64 // Unix ms of the first createdAt
	spanTo   int64 // Unix ms of the latest updatedAt
	attrGen  []attrGen
	relTo    []relPlan
	created  int // index of createdAt, or -1
	updated  int // index of updatedAt, or -1
}

type relPlan struct {
	target  *plan // single target type with seeded records, or nil
	targets []*plan
	via     int // index of the relationship the value derives from, or -1
	viaRel  int // index of the relationship on via's target
	always  bool
}

type genCtx struct {
	r                  rng
	id                 int64
	created, updated   timestamp
	first, last, email string
	company            string
}

type attrGen func(c *genCtx) any

func newPlans(cat *catalog.Catalog, seed uint64, count map[string]int64, from, to time.Time) map[string]*plan {
	plans := map[string]*plan{}
	for _, r := range cat.Resources() {
		if _, ok := count[r.Type]; !ok {
			continue
		}
		p := &plan{res: r, seed: seed ^ hashString(r.Type), count: count[r.Type], spanFrom: from.UnixMilli(), spanTo: to.UnixMilli(),
			created: r.AttributeIndex("createdAt"), updated: r.AttributeIndex("updatedAt")}
		p.attrGen = make([]attrGen, len(r.Attributes))
		for i := range r.Attributes {
			p.attrGen[i] = attributeGenerator(r, &r.Attributes[i])
		}
		plans[r.Type] = p
	}
	for _, p := range plans {
		p.relTo = make([]relPlan, len(p.res.Relationships))
		for i, rel := range p.res.Relationships {
			rp := relPlan{via: -1, always: alwaysSetRels[rel.Name]}
			for _, t := range rel.Targets {
				if tp := plans[t]; tp != nil && tp.count > 0 {
					rp.targets = append(rp.targets, tp)
				}
			}
			if len(rel.Targets) == 1 && len(rp.targets) == 1 {
				rp.target = rp.targets[0]
			}
			if d, ok := derivedRels[p.res.Type][rel.Name]; ok {
				via := relIndex(p.res, d[0])
				if via >= 0 {
					if vt := plans[p.res.Relationships[via].Target()]; vt != nil {
						if k := relIndex(vt.res, d[1]); k >= 0 {
							rp.via, rp.viaRel = via, k
						}
					}
				}
			}
			p.relTo[i] = rp
		}
	}
	return plans
}

func relIndex(r *catalog.Resource, name string) int {
	for i := range r.Relationships {
		if r.Relationships[i].Name == name {
			return i
		}
	}
	return -1
}

// createdAt of seeded record id: increasing with id over the first 90% of
// the span, so that createdAt order is id order.
func (p *plan) createdAt(id int64) timestamp {
	span := (p.spanTo - p.spanFrom) * 9 / 10
	step := span / max(p.count, 1)
	r := newRNG(p.seed, uint64(id), 1)
	ms := p.spanFrom + (id-1)*step + int64(r.float()*float64(step))
	return timestamp(ms - ms%1000)
}

// updatedAt of seeded record id: between createdAt and the span's end,
// skewed towards recent dates.
func (p *plan) updatedAt(id int64) timestamp {
	c := int64(p.createdAt(id))
	r := newRNG(p.seed, uint64(id), 2)
	u := r.float()
	ms := c + int64((1-u*u)*float64(p.spanTo-c))
	return timestamp(ms - ms%1000)
}

// relID returns the seeded value of to-one relationship i of record id:
// the target type and id, or ("", 0) for null.
func (p *plan) relID(i int, id int64) (string, int64) {
	rp := &p.relTo[i]
	if rp.via >= 0 {
		_, vid := p.relID(rp.via, id)
		if vid == 0 {
			return "", 0
		}
		return p.relTo[rp.via].target.relID(rp.viaRel, vid)
	}
	if len(rp.targets) == 0 || p.res.Relationships[i].ToMany {
		return "", 0
	}
	r := newRNG(p.seed, uint64(id), 100+uint64(i))
	if !rp.always && r.chance(0.5) {
		return "", 0
	}
	t := rp.target
	if t == nil {
		t = rp.targets[r.intn(len(rp.targets))]
	}
	return t.res.Type, (id-1)%t.count + 1
}

func (p *plan) relIDFor(i int, id int64) int64 {
	_, v := p.relID(i, id)
	return v
}

// inverse calls yield with every seeded id whose relationship i may point
// at parent, in increasing order, until yield returns false. It reports
// false when relationship i has no computable inverse.
func (p *plan) inverse(i int, parent int64, yield func(int64) bool) bool {
	rp := &p.relTo[i]
	if rp.via >= 0 || rp.target == nil {
		return false
	}
	n := rp.target.count
	for id := parent; id <= p.count; id += n {
		if !yield(id) {
			break
		}
	}
	return true
}

// generate builds seeded record id.
func (p *plan) generate(id int64) *record {
	rec := &record{id: id, attrs: make([]any, len(p.attrGen)), rels: make([]relRef, len(p.relTo))}
	c := genCtx{r: newRNG(p.seed, uint64(id), 3), id: id, created: p.createdAt(id), updated: p.updatedAt(id)}
	c.first, c.last = pick(&c.r, firstNames), pick(&c.r, lastNames)
	c.company = pick(&c.r, companyWords) + " " + pick(&c.r, companySuffixes)
	c.email = strings.ToLower(c.first+"."+c.last) + "." + strconv.FormatInt(id, 10) + "@" + domainOf(c.company)
	for i, g := range p.attrGen {
		if g != nil {
			rec.attrs[i] = g(&c)
		}
	}
	if p.created >= 0 {
		rec.attrs[p.created] = c.created
	}
	if p.updated >= 0 {
		rec.attrs[p.updated] = c.updated
	}
	for i := range p.relTo {
		t, v := p.relID(i, id)
		rec.rels[i] = relRef{typ: t, id: v}
	}
	switch p.res.Type {
	case "prospect":
		rec.extra = map[string]any{"accountName": c.company, "smsOptStatus": pick(&c.r, []string{"opted_in", "opted_out"})}
	case "webhook":
		// Seeded webhooks belong to another integration of the org, so
		// their cleanup token is not shown.
		rec.extra = map[string]any{"cleanupToken": nil, "creatorAppId": seededWebhookAppID, "creatorAppName": seededWebhookAppName}
	}
	return rec
}

// The integration that made the seeded webhooks.
const (
	seededWebhookAppID   = "sandboxSeededIntegration0000000000000000000"
	seededWebhookAppName = "Sandbox Seeded Integration"
)

func domainOf(company string) string {
	return strings.ToLower(strings.Fields(company)[0]) + ".example"
}

// attributeGenerator chooses how seeded values of an attribute look.
func attributeGenerator(res *catalog.Resource, a *catalog.Attribute) attrGen {
	if a.WriteOnly {
		return nil
	}
	name := a.Name
	if len(a.Values) > 0 {
		vals := a.Values
		return func(c *genCtx) any { return pick(&c.r, vals) }
	}
	if strings.HasPrefix(name, "custom") {
		n, err := strconv.Atoi(strings.TrimPrefix(name, "custom"))
		if err != nil || n > 3 {
			return nil
		}
		return sometimes(0.6, func(c *genCtx) any { return pick(&c.r, customValues) })
	}
	if name == "timestamp" || name == "eventAt" {
		return func(c *genCtx) any { return c.created }
	}
	if name == "trashedAt" {
		return sometimes(0.05, func(c *genCtx) any { return c.updated })
	}
	switch a.Type {
	case catalog.TypeDateTime:
		return sometimes(0.4, func(c *genCtx) any {
			lo, hi := int64(c.created), int64(c.updated)
			ms := lo + int64(c.r.float()*float64(hi-lo+1))
			return timestamp(ms - ms%1000)
		})
	case catalog.TypeDate:
		return sometimes(0.5, func(c *genCtx) any { return c.updated.Time().AddDate(0, 0, c.r.intn(90)).Format(time.DateOnly) })
	case catalog.TypeBoolean:
		return func(c *genCtx) any { return c.r.chance(0.3) }
	case catalog.TypeInteger:
		if name == "order" {
			return func(c *genCtx) any { return c.id }
		}
		return func(c *genCtx) any { return int64(c.r.intn(50)) }
	case catalog.TypeNumber:
		return func(c *genCtx) any { return float64(c.r.intn(10000)) / 100 }
	case catalog.TypeObject:
		if res.Type == "event" && name == "payload" {
			return func(c *genCtx) any {
				return json.RawMessage(fmt.Sprintf(`{"source":"sandbox","sequence":%d}`, c.id))
			}
		}
		return nil
	case catalog.TypeArray:
		switch {
		case name == "contactHistogram":
			return func(c *genCtx) any {
				h := make(histogram, 12)
				for i := range h {
					h[i] = [2]int64{int64(c.r.intn(4)), int64(c.r.intn(9))}
				}
				return h
			}
		case name == "emails":
			return func(c *genCtx) any { return []string{c.email} }
		case strings.HasSuffix(name, "Phones"):
			return sometimes(0.5, func(c *genCtx) any { return []string{phone(c)} })
		case name == "tags":
			return func(c *genCtx) any {
				if c.r.chance(0.5) {
					return []string{}
				}
				return []string{pick(&c.r, tagWords)}
			}
		case a.Items == catalog.TypeString:
			return func(*genCtx) any { return []string{} }
		}
		return func(*genCtx) any { return json.RawMessage("[]") }
	case catalog.TypeString:
		return stringGenerator(res, a)
	}
	return nil
}

func stringGenerator(res *catalog.Resource, a *catalog.Attribute) attrGen {
	lower := strings.ToLower(a.Name)
	switch {
	case a.Name == "firstName":
		return func(c *genCtx) any { return c.first }
	case a.Name == "lastName":
		return func(c *genCtx) any { return c.last }
	case a.Name == "name":
		switch res.Type {
		case "prospect", "user":
			return func(c *genCtx) any { return c.first + " " + c.last }
		case "account":
			return func(c *genCtx) any { return c.company }
		case "opportunity":
			return func(c *genCtx) any { return c.company + " " + pick(&c.r, dealWords) }
		default:
			title := strings.ToUpper(res.Type[:1]) + res.Type[1:]
			return func(c *genCtx) any { return title + " " + strconv.FormatInt(c.id, 10) }
		}
	case a.Name == "email" || a.Name == "username":
		return func(c *genCtx) any { return c.email }
	case a.Name == "company" || a.Name == "companyName":
		return func(c *genCtx) any { return c.company }
	case a.Name == "domain":
		return func(c *genCtx) any { return domainOf(c.company) }
	case a.Name == "title" || a.Name == "occupation":
		return func(c *genCtx) any { return pick(&c.r, jobTitles) }
	case a.Name == "industry" || a.Name == "companyIndustry":
		return func(c *genCtx) any { return pick(&c.r, industries) }
	case a.Name == "addressCity":
		return func(c *genCtx) any { return pick(&c.r, cities) }
	case a.Name == "addressStreet":
		return func(c *genCtx) any { return fmt.Sprintf("%d %s St", 1+c.r.intn(9999), pick(&c.r, lastNames)) }
	case a.Name == "addressZip":
		return func(c *genCtx) any { return fmt.Sprintf("%05d", c.r.intn(100000)) }
	case a.Name == "addressState":
		return func(c *genCtx) any { return pick(&c.r, []string{"WA", "TX", "CA", "NY", "ON", "Bavaria"}) }
	case a.Name == "addressCountry":
		return func(*genCtx) any { return "USA" }
	case a.Name == "timeZone" || a.Name == "timezone":
		return func(c *genCtx) any { return pick(&c.r, timeZones) }
	case a.Name == "subject":
		return func(c *genCtx) any { return pick(&c.r, subjects) }
	case a.Name == "bodyHtml":
		return func(c *genCtx) any { return bodyHTML(c) }
	case a.Name == "bodyText":
		return func(c *genCtx) any {
			return pick(&c.r, subjects) + "\n\n" + strings.Repeat(pick(&c.r, sentences)+" ", 8)
		}
	case a.Name == "note" || a.Name == "description" || a.Name == "body":
		return sometimes(0.6, func(c *genCtx) any { return pick(&c.r, sentences) })
	case a.Name == "color":
		return func(c *genCtx) any { return pick(&c.r, colors) }
	case a.Name == "state" && res.Type == "sequenceState":
		return func(c *genCtx) any { return pick(&c.r, sequenceStateStates) }
	case strings.HasSuffix(lower, "url"):
		return sometimes(0.5, func(c *genCtx) any {
			return "https://" + domainOf(c.company) + "/" + strings.ToLower(c.last)
		})
	case strings.HasSuffix(lower, "phone") || a.Name == "number" || a.Name == "from" || a.Name == "to":
		return func(c *genCtx) any { return phone(c) }
	case a.Name == "externalSource" || a.Name == "source":
		return sometimes(0.5, func(c *genCtx) any { return pick(&c.r, []string{"Salesforce", "HubSpot", "CSV import"}) })
	case a.Name == "locale":
		return func(*genCtx) any { return "en" }
	case a.Name == "phoneCountryCode":
		return func(c *genCtx) any { return pick(&c.r, []string{"US", "GB", "DE", "CA", "AU"}) }
	case a.Name == "globalId" || a.Name == "orgId" || a.Name == "requestId":
		return func(c *genCtx) any { return seededUUID(c) }
	case a.Name == "amountPrecise":
		return sometimes(0.7, func(c *genCtx) any { return fmt.Sprintf("%d.%02d", c.r.intn(500000), c.r.intn(100)) })
	}
	// Anything else gets a placeholder word that fits the declared
	// maxLength. A short code whose values the document does not name
	// (ruleset.smsOptOutAction, maxLength 4) stays null: any word would be
	// as wrong as "alpha".
	words := slices.DeleteFunc(slices.Clone(shortWords), func(w string) bool {
		return a.MaxLength > 0 && utf8.RuneCountInString(w) > a.MaxLength
	})
	if a.MaxLength > 0 && a.MaxLength < 8 || len(words) == 0 {
		return nil
	}
	if a.Nullable {
		return sometimes(0.15, func(c *genCtx) any { return pick(&c.r, words) })
	}
	return func(c *genCtx) any { return pick(&c.r, words) }
}

func sometimes(p float64, g attrGen) attrGen {
	return func(c *genCtx) any {
		if c.r.chance(p) {
			return g(c)
		}
		return nil
	}
}

// seededUUID is a version-4-shaped UUID drawn from the record's generator.
func seededUUID(c *genCtx) string {
	b := make([]byte, 36)
	for i := range b {
		switch i {
		case 8, 13, 18, 23:
			b[i] = '-'
		case 14:
			b[i] = '4'
		default:
			b[i] = hexDigits[c.r.intn(16)]
		}
	}
	return string(b)
}

func phone(c *genCtx) string {
	return fmt.Sprintf("+1 206 555 %04d", c.r.intn(10000))
}

func bodyHTML(c *genCtx) string {
	var b strings.Builder
	b.WriteString("<div><p>Hi ")
	b.WriteString(c.first)
	b.WriteString(",</p>")
	for range 20 + c.r.intn(40) {
		b.WriteString("<p>")
		b.WriteString(pick(&c.r, sentences))
		b.WriteString("</p>")
	}
	b.WriteString("<p>Best regards</p></div>")
	return b.String()
}

var (
	firstNames = []string{"Sally", "Ana", "Omar", "Mei", "Lukas", "Priya", "Diego", "Fatima", "John", "Aiko", "Noah", "Zara",
		"Ivan", "Chloe", "Kwame", "Elena", "Ravi", "Sofia", "Jonas", "Amara", "Liam", "Yuki", "Mateo", "Nora"}
	lastNames = []string{"Smith", "Garcia", "Chen", "Müller", "Patel", "Okafor", "Rossi", "Kim", "Nguyen", "Johansson",
		"Haddad", "Silva", "Kowalski", "O'Brien", "Tanaka", "Dubois", "Novak", "Ali", "Schmidt", "Lopez"}
	companyWords    = []string{"Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Aperture", "Massive", "Pied"}
	companySuffixes = []string{"International", "Corp", "Labs", "Systems", "GmbH", "Inc.", "Partners", "Analytics"}
	dealWords       = []string{"Renewal", "Expansion", "Pilot", "Enterprise Deal", "Upsell"}
	jobTitles       = []string{"VP Sales", "Head of RevOps", "Account Executive", "CTO", "Data Engineer", "Marketing Manager", "SDR", "CFO"}
	industries      = []string{"Software", "Manufacturing", "Healthcare", "Finance", "Retail", "Education", "Logistics"}
	cities          = []string{"Seattle", "Austin", "Berlin", "London", "Toronto", "Sydney", "Bangalore", "São Paulo"}
	timeZones       = []string{"America/Los_Angeles", "America/New_York", "Europe/Berlin", "Europe/London", "Asia/Tokyo"}
	subjects        = []string{"Quick question", "Following up", "Ideas for your team", "Meeting next week?", "Re: pricing"}
	sentences       = []string{"I wanted to follow up on our last conversation.", "Would a short call next week work for you?",
		"Teams like yours cut onboarding time in half.", "Happy to share a case study & numbers.", "Let me know what \"works\" for you.",
		"We support <b>SSO</b> and audit logs out of the box."}
	colors              = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"}
	tagWords            = []string{"Interested", "2017 Expo", "Tier 1", "Inbound Leads", "Webinar"}
	customValues        = []string{"Gold", "Silver", "Bronze", "EMEA", "NA", "yes", "no"}
	shortWords          = []string{"alpha", "beta", "gamma", "delta", "standard", "default", "primary"} // each at least 4 characters
	sequenceStateStates = []string{"active", "active", "paused", "finished", "finished", "pending", "failed", "bounced", "disabled", "opted_out"}
)
