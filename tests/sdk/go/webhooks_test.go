package sdkgo

// Webhooks, judged by LiveKit's own Go receiver (webhook.ReceiveWebhookEvent): every delivery
// must carry a JWT (signed with the configured key) whose sha256 claim matches the body, and a
// body that parses as a WebhookEvent.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/webhook"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

const (
	hookContentType = "application/webhook+json"
	hookArrival     = 30 * time.Second
	hookQuiet       = time.Second // the "nothing more arrives" window
)

// hookReceiver is an HTTP endpoint that verifies each request with the SDK and records it.
type hookReceiver struct {
	mu       sync.Mutex
	requests int // every request, accepted or not
	events   []*livekit.WebhookEvent
	problems []string
	changed  chan struct{}
}

func newHookReceiver() *hookReceiver { return &hookReceiver{changed: make(chan struct{})} }

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	// The SDK reads the body itself; give it the same bytes.
	r.Body = io.NopCloser(bytes.NewReader(body))
	var problems []string
	if err != nil {
		problems = append(problems, fmt.Sprintf("reading the body: %v", err))
	}
	if r.Method != http.MethodPost || r.URL.Path != "/hook" {
		problems = append(problems, fmt.Sprintf("%s %s, want POST /hook", r.Method, r.URL.Path))
	}
	ev, err := webhook.ReceiveWebhookEvent(r, auth.NewSimpleKeyProvider(DevKey, DevSecret))
	if err != nil {
		problems = append(problems, fmt.Sprintf("webhook.ReceiveWebhookEvent: %v; Authorization=%q body=%s",
			err, r.Header.Get("Authorization"), body))
	}
	// ReceiveWebhookEvent discards unknown fields; parse again strictly so a field LiveKit's
	// schema does not have (or a misspelt one) is caught too.
	if err := protojson.Unmarshal(body, &livekit.WebhookEvent{}); err != nil {
		problems = append(problems, fmt.Sprintf("strict protojson parse: %v; body=%s", err, body))
	}
	if ct := r.Header.Get("Content-Type"); ct != hookContentType {
		problems = append(problems, fmt.Sprintf("Content-Type %q, want %q", ct, hookContentType))
	}

	h.mu.Lock()
	h.requests++
	h.problems = append(h.problems, problems...)
	if ev != nil {
		h.events = append(h.events, ev)
	}
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	if err != nil || ev == nil {
		// A rejection; 4xx so the sender does not retry it (the test fails anyway).
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

// snapshot is what arrived so far.
func (h *hookReceiver) snapshot() (requests int, events []*livekit.WebhookEvent, problems []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, append([]*livekit.WebhookEvent(nil), h.events...), append([]string(nil), h.problems...)
}

// waitEvents waits until n events were accepted, failing on a problem or after timeout.
func (h *hookReceiver) waitEvents(t *testing.T, n int, timeout time.Duration) []*livekit.WebhookEvent {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		events, problems, wake := append([]*livekit.WebhookEvent(nil), h.events...), h.problems, h.changed
		h.mu.Unlock()
		if len(problems) > 0 {
			t.Fatalf("webhook deliveries rejected:\n%s", strings.Join(problems, "\n"))
		}
		if len(events) >= n {
			return events
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("%d of %d webhook events within %s: %v", len(events), n, timeout, eventNames(events))
		}
	}
}

func eventNames(events []*livekit.WebhookEvent) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.Event)
	}
	return out
}

func TestWebhooksRoomLife(t *testing.T) {
	hooks := newHookReceiver()
	receiver := httptest.NewServer(hooks)
	t.Cleanup(receiver.Close) // runs after Usher stopped (cleanups run last-in first-out)

	yaml := "keys:\n  " + DevKey + ": " + DevSecret + "\n" +
		"webhook:\n  api_key: " + DevKey + "\n  urls: ['" + receiver.URL + "/hook']\n" +
		"room:\n  departure_timeout: 1\n"
	srv := startConfigured(t, yaml)

	// A join creates the room; a track is published; the API removes the participant; the
	// empty room closes after its departure_timeout (1 s).
	room := Unique("go-hook")
	alice := joinRoom(t, srv.URL, joinToken(t, room, "alice", ""), "alice")
	psid, rsid := alice.Join.Participant.Sid, alice.Join.Room.Sid
	mic := alice.AddTrack(t, "mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE)
	_, err := lksdk.NewRoomServiceClient(srv.URL, DevKey, DevSecret).
		RemoveParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "alice"})
	must(t, "RemoveParticipant", err)
	_, m := alice.WaitFor(t, isKind("leave"), 0, fastWait, "the removal leave")
	if m.GetLeave().Reason != livekit.DisconnectReason_PARTICIPANT_REMOVED {
		t.Errorf("leave reason %v, want PARTICIPANT_REMOVED", m.GetLeave().Reason)
	}

	want := []string{
		webhook.EventRoomStarted,
		webhook.EventParticipantJoined,
		webhook.EventTrackPublished,
		webhook.EventTrackUnpublished,
		webhook.EventParticipantLeft,
		webhook.EventRoomFinished,
	}
	events := hooks.waitEvents(t, len(want), hookArrival)
	if got := eventNames(events); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("webhook events = %v, want exactly %v", got, want)
	}

	ids := map[string]bool{}
	var lastCreated int64
	for i, e := range events {
		if !strings.HasPrefix(e.Id, "EV_") || ids[e.Id] {
			t.Errorf("event %d (%s) id %q: want a distinct EV_ id", i, e.Event, e.Id)
		}
		ids[e.Id] = true
		if e.Room.GetName() != room || e.Room.GetSid() != rsid {
			t.Errorf("%s: room %q/%q, want %q/%q", e.Event, e.Room.GetName(), e.Room.GetSid(), room, rsid)
		}
		if e.CreatedAt < lastCreated || time.Since(time.Unix(e.CreatedAt, 0)).Abs() > 2*time.Minute {
			t.Errorf("%s: created_at %d (previous %d), want recent and not going back", e.Event, e.CreatedAt, lastCreated)
		}
		lastCreated = e.CreatedAt
	}
	started, joined, published, unpublished, left, finished := events[0], events[1], events[2], events[3], events[4], events[5]
	for _, e := range []*livekit.WebhookEvent{joined, published, unpublished, left} {
		if e.Participant.GetIdentity() != "alice" || e.Participant.GetSid() != psid {
			t.Errorf("%s: participant %q/%q, want alice/%s", e.Event, e.Participant.GetIdentity(), e.Participant.GetSid(), psid)
		}
	}
	for _, e := range []*livekit.WebhookEvent{published, unpublished} {
		if tr := e.Track; tr.GetSid() != mic.Sid || tr.GetType() != livekit.TrackType_AUDIO || tr.GetSource() != livekit.TrackSource_MICROPHONE {
			t.Errorf("%s: track %v, want the mic %s (AUDIO, MICROPHONE)", e.Event, tr, mic.Sid)
		}
	}
	if left.Participant.GetDisconnectReason() != livekit.DisconnectReason_PARTICIPANT_REMOVED {
		t.Errorf("participant_left: disconnect_reason %v, want PARTICIPANT_REMOVED", left.Participant.GetDisconnectReason())
	}
	for _, e := range []*livekit.WebhookEvent{started, finished} {
		if e.Participant != nil || e.Track != nil {
			t.Errorf("%s carries participant %v / track %v, want neither", e.Event, e.Participant, e.Track)
		}
	}

	// Nothing more arrives (no duplicate, no retry, no stray event).
	time.Sleep(hookQuiet)
	requests, after, problems := hooks.snapshot()
	if len(problems) > 0 {
		t.Errorf("webhook deliveries rejected:\n%s", strings.Join(problems, "\n"))
	}
	if requests != len(want) || len(after) != len(want) {
		t.Errorf("%d requests (%d events: %v) after a %s quiet window, want exactly %d",
			requests, len(after), eventNames(after), hookQuiet, len(want))
	}
	noProblems(t, alice)
}
