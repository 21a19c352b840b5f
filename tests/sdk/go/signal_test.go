package sdkgo

// A minimal /rtc signalling client for the suite: it plays a participant that never sets up
// media. It opens the WebSocket (protocol 16), records every SignalResponse in arrival order,
// keeps the session alive with ping_req, and lets a test send requests and wait for messages.
// Messages are the official Go types from github.com/livekit/protocol/livekit, so anything
// Usher sends that those types cannot decode fails the test.

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

const (
	protocolVersion = 16
	// Usher closes a socket that has been silent for 15 s (JoinResponse.ping_timeout); a ping
	// every 4 s keeps even a slow test well inside that.
	pingEvery = 4 * time.Second
	// Presence updates about non-publishers may be batched for up to 3 s, so the default wait
	// leaves room for a batch plus scheduling noise.
	defaultWait = 8 * time.Second
	// For messages the server sends at once (answers to requests, admin-caused changes).
	fastWait = 5 * time.Second
)

// Pred selects SignalResponses.
type Pred func(*livekit.SignalResponse) bool

// kindOf names the oneof variant that is set ("join", "update", ...), for predicates and
// failure messages.
func kindOf(m *livekit.SignalResponse) string {
	r := m.ProtoReflect()
	if fd := r.WhichOneof(r.Descriptor().Oneofs().ByName("message")); fd != nil {
		return string(fd.Name())
	}
	return "?"
}

// isKind matches the variant with this (protobuf field) name.
func isKind(name string) Pred {
	return func(m *livekit.SignalResponse) bool { return kindOf(m) == name }
}

// infosAbout is every ParticipantInfo about identity in an update message.
func infosAbout(m *livekit.SignalResponse, identity string) []*livekit.ParticipantInfo {
	var out []*livekit.ParticipantInfo
	for _, p := range m.GetUpdate().GetParticipants() {
		if p.Identity == identity {
			out = append(out, p)
		}
	}
	return out
}

// updateAbout matches an update carrying an entry about identity for which cond holds
// (any entry when cond is nil).
func updateAbout(identity string, cond func(*livekit.ParticipantInfo) bool) Pred {
	return func(m *livekit.SignalResponse) bool {
		for _, p := range infosAbout(m, identity) {
			if cond == nil || cond(p) {
				return true
			}
		}
		return false
	}
}

// joinToken mints a join token with the Go SDK's AccessToken (dev key).
func joinToken(t *testing.T, room, identity, metadata string) string {
	t.Helper()
	at := auth.NewAccessToken(DevKey, DevSecret).
		SetIdentity(identity).
		SetName(identity + " name").
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room})
	if metadata != "" {
		at.SetMetadata(metadata)
	}
	tok, err := at.ToJWT()
	must(t, "join ToJWT", err)
	return tok
}

// SignalClient is one participant's signalling socket.
type SignalClient struct {
	Label string
	Join  *livekit.JoinResponse

	conn     *websocket.Conn
	writeMu  sync.Mutex   // gorilla allows one concurrent writer
	lastPing atomic.Int64 // timestamp of the latest ping_req

	mu       sync.Mutex
	received []*livekit.SignalResponse
	problems []string      // undecodable frames, text frames
	changed  chan struct{} // closed and replaced whenever received or closed changes
	closed   bool
	closeErr error

	done     chan struct{} // closed when the reader has exited
	stopPing chan struct{}
	stopOnce sync.Once
}

// wsURL turns the server's http:// URL into the /rtc URL for token.
func wsURL(httpURL, token string) string {
	base := strings.Replace(httpURL, "http://", "ws://", 1)
	return fmt.Sprintf("%s/rtc?access_token=%s&protocol=%d&sdk=go", base, url.QueryEscape(token), protocolVersion)
}

// joinRoom connects with token and returns once the JoinResponse (which must be the first
// frame) arrived. The socket is closed when the test ends.
func joinRoom(t *testing.T, httpURL, token, label string) *SignalClient {
	t.Helper()
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := dialer.Dial(wsURL(httpURL, token), nil)
	if err != nil {
		// A refused upgrade is an ordinary HTTP answer; show it.
		detail := ""
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			detail = fmt.Sprintf(" (HTTP %d: %q)", resp.StatusCode, body)
		}
		t.Fatalf("%s: /rtc dial: %v%s", label, err, detail)
	}
	c := &SignalClient{
		Label:    label,
		conn:     conn,
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
		stopPing: make(chan struct{}),
	}
	go c.read()
	t.Cleanup(c.Close)

	_, first := c.WaitFor(t, func(*livekit.SignalResponse) bool { return true }, 0, fastWait, "the first frame")
	if first.GetJoin() == nil {
		t.Fatalf("%s: first frame is %s, want join; %s", label, kindOf(first), c.Summary())
	}
	c.Join = first.GetJoin()
	go c.pingLoop()
	return c
}

func (c *SignalClient) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *SignalClient) read() {
	defer close(c.done)
	for {
		typ, data, err := c.conn.ReadMessage()
		c.mu.Lock()
		if err != nil {
			c.closed, c.closeErr = true, err
			c.notifyLocked()
			c.mu.Unlock()
			c.stopPinging()
			return
		}
		if typ != websocket.BinaryMessage {
			c.problems = append(c.problems, fmt.Sprintf("unexpected frame type %d: %q", typ, data))
		} else {
			m := &livekit.SignalResponse{}
			if err := proto.Unmarshal(data, m); err != nil {
				c.problems = append(c.problems, fmt.Sprintf("undecodable SignalResponse: %v", err))
			} else {
				c.received = append(c.received, m)
			}
		}
		c.notifyLocked()
		c.mu.Unlock()
	}
}

func (c *SignalClient) stopPinging() { c.stopOnce.Do(func() { close(c.stopPing) }) }

func (c *SignalClient) pingLoop() {
	tick := time.NewTicker(pingEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stopPing:
			return
		case <-tick.C:
			// Timestamps are unique per client, so Fence can tell its own pongs apart.
			_ = c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{
				PingReq: &livekit.Ping{Timestamp: c.nextPingTimestamp()},
			}})
		}
	}
}

// nextPingTimestamp is the current time in ms (as LiveKit clients send), bumped past the
// previous one when needed so that every ping of this client is unique.
func (c *SignalClient) nextPingTimestamp() int64 {
	for {
		last, now := c.lastPing.Load(), time.Now().UnixMilli()
		if now <= last {
			now = last + 1
		}
		if c.lastPing.CompareAndSwap(last, now) {
			return now
		}
	}
}

// Send writes one SignalRequest as a binary frame.
func (c *SignalClient) Send(req *livekit.SignalRequest) error {
	data, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.BinaryMessage, data)
}

// Mark is the index the next message will get; pass it as since to look only at later ones.
func (c *SignalClient) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.received)
}

// All is every recorded message from index since on that matches pred.
func (c *SignalClient) All(pred Pred, since int) []*livekit.SignalResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*livekit.SignalResponse
	for _, m := range c.received[since:] {
		if pred(m) {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor returns the first message at index >= since matching pred, and its index. It fails
// the test if the socket closes first or nothing matches within timeout.
func (c *SignalClient) WaitFor(t *testing.T, pred Pred, since int, timeout time.Duration, what string) (int, *livekit.SignalResponse) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i := since; i < len(c.received); i++ {
			if pred(c.received[i]) {
				m := c.received[i]
				c.mu.Unlock()
				return i, m
			}
		}
		closed, wake := c.closed, c.changed
		c.mu.Unlock()
		if closed {
			t.Fatalf("%s: socket closed while waiting for %s; %s", c.Label, what, c.Summary())
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("%s: no %s within %s; %s", c.Label, what, timeout, c.Summary())
		}
	}
}

// WaitClosed waits until the server closes the socket.
func (c *SignalClient) WaitClosed(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		t.Fatalf("%s: socket still open after %s; %s", c.Label, timeout, c.Summary())
	}
}

// Closed reports whether the socket has closed.
func (c *SignalClient) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Fence makes "nothing was sent" checkable without sleeping: once it returns, every message
// the server had queued for this client before the call has been received. It takes two
// ping_req round trips because Usher writes a pong ahead of frames already queued and then
// flushes those queued frames in the same batch (up to 64): after the first pong, frames
// queued earlier can still trail it on the wire, but nothing written in that batch can come
// after the second pong, which is only produced once our second ping is read.
func (c *SignalClient) Fence(t *testing.T) {
	t.Helper()
	for i := 0; i < 2; i++ {
		ts := c.nextPingTimestamp()
		since := c.Mark()
		if err := c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: ts}}}); err != nil {
			t.Fatalf("%s: send ping_req: %v", c.Label, err)
		}
		c.WaitFor(t, func(m *livekit.SignalResponse) bool { return m.GetPongResp().GetLastPingTimestamp() == ts },
			since, fastWait, "pong_resp to a fence ping")
	}
}

// AddTrack announces a track and returns the TrackInfo of the track_published answering it.
func (c *SignalClient) AddTrack(t *testing.T, cid string, typ livekit.TrackType, source livekit.TrackSource) *livekit.TrackInfo {
	t.Helper()
	since := c.Mark()
	err := c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{
		Cid: cid, Name: cid, Type: typ, Source: source,
	}}})
	if err != nil {
		t.Fatalf("%s: send add_track: %v", c.Label, err)
	}
	_, m := c.WaitFor(t, func(m *livekit.SignalResponse) bool { return m.GetTrackPublished().GetCid() == cid },
		since, fastWait, "track_published "+cid)
	tr := m.GetTrackPublished().GetTrack()
	if tr == nil {
		t.Fatalf("%s: track_published %s without a track", c.Label, cid)
	}
	return tr
}

// Problems is every frame the client could not accept (text frames, undecodable bytes).
func (c *SignalClient) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.problems...)
}

// Summary lists what was received, for failure messages.
func (c *SignalClient) Summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := make([]string, 0, len(c.received))
	for _, m := range c.received {
		switch kindOf(m) {
		case "update":
			var ps []string
			for _, p := range m.GetUpdate().GetParticipants() {
				ps = append(ps, fmt.Sprintf("%s:%s/v%d/t%d", p.Identity, p.State, p.Version, len(p.Tracks)))
			}
			parts = append(parts, "update["+strings.Join(ps, ", ")+"]")
		case "leave":
			parts = append(parts, "leave("+m.GetLeave().Reason.String()+")")
		case "pong_resp":
			// keep-alive noise
		default:
			parts = append(parts, kindOf(m))
		}
	}
	closed := ""
	if c.closed {
		closed = fmt.Sprintf(" closed(%v)", c.closeErr)
	}
	if len(c.problems) > 0 {
		closed += fmt.Sprintf(" problems=%q", c.problems)
	}
	return fmt.Sprintf("seen %d%s: %s", len(c.received), closed, strings.Join(parts, " "))
}

// Close sends a WebSocket close frame (no leave) and waits briefly for the server to end the
// connection. Idempotent.
func (c *SignalClient) Close() {
	c.stopPinging()
	c.writeMu.Lock()
	_ = c.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.writeMu.Unlock()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	_ = c.conn.Close()
	<-c.done
}
