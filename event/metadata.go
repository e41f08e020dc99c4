package event

import "maps"

// Metadata is carried with every event: correlation and causation IDs, W3C
// trace context, and free-form user keys.
type Metadata struct {
	// CorrelationID ties together everything caused by one request.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the ID of the command or event that caused this one.
	CausationID string `json:"causation_id,omitempty"`
	// TraceParent and TraceState are the W3C trace context headers of the
	// span that recorded the event.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
	// Extra holds user keys.
	Extra map[string]string `json:"extra,omitempty"`
}

// Header names used when metadata travels as broker or outbox headers.
const (
	HeaderCorrelationID = "Cqrs-Correlation-Id"
	HeaderCausationID   = "Cqrs-Causation-Id"
	HeaderTraceParent   = "traceparent"
	HeaderTraceState    = "tracestate"
	headerExtraPrefix   = "Cqrs-X-"
)

// Headers returns m as message headers. User keys are prefixed "Cqrs-X-".
func (m Metadata) Headers() map[string]string {
	h := make(map[string]string, 4+len(m.Extra))
	set := func(k, v string) {
		if v != "" {
			h[k] = v
		}
	}
	set(HeaderCorrelationID, m.CorrelationID)
	set(HeaderCausationID, m.CausationID)
	set(HeaderTraceParent, m.TraceParent)
	set(HeaderTraceState, m.TraceState)
	for k, v := range m.Extra {
		h[headerExtraPrefix+k] = v
	}
	return h
}

// MetadataFromHeaders is the inverse of Metadata.Headers. Unknown headers are
// ignored.
func MetadataFromHeaders(h map[string]string) Metadata {
	m := Metadata{
		CorrelationID: h[HeaderCorrelationID],
		CausationID:   h[HeaderCausationID],
		TraceParent:   h[HeaderTraceParent],
		TraceState:    h[HeaderTraceState],
	}
	for k, v := range h {
		if len(k) > len(headerExtraPrefix) && k[:len(headerExtraPrefix)] == headerExtraPrefix {
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[k[len(headerExtraPrefix):]] = v
		}
	}
	return m
}

// Clone returns a deep copy of m.
func (m Metadata) Clone() Metadata {
	m.Extra = maps.Clone(m.Extra)
	return m
}
