package sdkgo

// Participant management on connected participants: the RoomService calls go through the Go
// SDK's RoomServiceClient (protobuf over Twirp), the participants are SignalClients joined
// with tokens the SDK's AccessToken minted. Each test checks the RPC answer and what the
// connected clients received.

import (
	"maps"
	"sort"
	"strings"
	"testing"

	"github.com/twitchtv/twirp"
	"google.golang.org/protobuf/proto"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

const (
	RemoteUnmuteOff = "twirp error unknown: remote unmute not enabled"
	AlreadyThere    = "twirp error unknown: participant already exists in the destination room"
)

func trackSIDs(p *livekit.ParticipantInfo) []string {
	out := make([]string, 0, len(p.GetTracks()))
	for _, tr := range p.GetTracks() {
		out = append(out, tr.Sid)
	}
	sort.Strings(out)
	return out
}

func identities(ps []*livekit.ParticipantInfo) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Identity)
	}
	sort.Strings(out)
	return out
}

func byIdentity(ps []*livekit.ParticipantInfo, identity string) *livekit.ParticipantInfo {
	for _, p := range ps {
		if p.Identity == identity {
			return p
		}
	}
	return nil
}

// agreesWithJoin checks that a participant the API reports is the session a JoinResponse
// described: same identity, sid, profile and permission, no older version.
func agreesWithJoin(t *testing.T, what string, got, joined *livekit.ParticipantInfo) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: missing (joined as %s/%s)", what, joined.Identity, joined.Sid)
	}
	if got.Identity != joined.Identity || got.Sid != joined.Sid || got.Name != joined.Name ||
		got.Metadata != joined.Metadata || !maps.Equal(got.Attributes, joined.Attributes) || got.Kind != joined.Kind {
		t.Errorf("%s: identity/sid/name/metadata/attributes/kind = %q/%q/%q/%q/%v/%v, join said %q/%q/%q/%q/%v/%v",
			what, got.Identity, got.Sid, got.Name, got.Metadata, got.Attributes, got.Kind,
			joined.Identity, joined.Sid, joined.Name, joined.Metadata, joined.Attributes, joined.Kind)
	}
	if got.JoinedAt != joined.JoinedAt || got.JoinedAtMs != joined.JoinedAtMs {
		t.Errorf("%s: joined_at %d/%d ms, join said %d/%d ms", what, got.JoinedAt, got.JoinedAtMs, joined.JoinedAt, joined.JoinedAtMs)
	}
	if !proto.Equal(got.Permission, joined.Permission) {
		t.Errorf("%s: permission %v, join said %v", what, got.Permission, joined.Permission)
	}
	if got.Version < joined.Version {
		t.Errorf("%s: version %d is older than the join's %d", what, got.Version, joined.Version)
	}
	if got.State != livekit.ParticipantInfo_JOINED {
		t.Errorf("%s: state %v, want JOINED", what, got.State)
	}
	if len(got.Tracks) != 0 {
		t.Errorf("%s: tracks %v, want none", what, trackSIDs(got))
	}
}

func noProblems(t *testing.T, clients ...*SignalClient) {
	t.Helper()
	for _, c := range clients {
		if p := c.Problems(); len(p) > 0 {
			t.Errorf("%s: frames the client could not accept: %q", c.Label, p)
		}
	}
}

func TestSessionsListAndGetAgreeWithJoin(t *testing.T) {
	c := devClient()
	room := Unique("go-sess-list")
	alice := joinRoom(t, dev.URL, joinToken(t, room, "alice", "m-alice"), "alice")
	bob := joinRoom(t, dev.URL, joinToken(t, room, "bob", ""), "bob")
	ja, jb := alice.Join, bob.Join

	if !strings.HasPrefix(ja.Participant.Sid, "PA_") || !strings.HasPrefix(jb.Participant.Sid, "PA_") ||
		ja.Participant.Sid == jb.Participant.Sid {
		t.Errorf("participant sids %q, %q: want two distinct PA_ sids", ja.Participant.Sid, jb.Participant.Sid)
	}
	if ja.Room.Name != room || !roomSIDRE.MatchString(ja.Room.Sid) || jb.Room.Sid != ja.Room.Sid {
		t.Errorf("join rooms: alice %q/%q, bob %q/%q; want %q with one RM_ sid", ja.Room.Name, ja.Room.Sid, jb.Room.Name, jb.Room.Sid, room)
	}
	if len(ja.OtherParticipants) != 0 {
		t.Errorf("alice joined an empty room, but other_participants = %v", identities(ja.OtherParticipants))
	}
	if len(jb.OtherParticipants) != 1 || jb.OtherParticipants[0].Sid != ja.Participant.Sid {
		t.Errorf("bob's other_participants = %v, want exactly alice (%s)", identities(jb.OtherParticipants), ja.Participant.Sid)
	}
	if ja.Participant.Name != "alice name" || ja.Participant.Metadata != "m-alice" {
		t.Errorf("alice's join: name %q metadata %q, as in her token: %q/%q", ja.Participant.Name, ja.Participant.Metadata, "alice name", "m-alice")
	}

	// alice hears of bob (possibly in a batched presence update).
	_, m := alice.WaitFor(t, updateAbout("bob", func(p *livekit.ParticipantInfo) bool { return p.State == livekit.ParticipantInfo_JOINED }),
		0, defaultWait, "bob JOINED")
	if got := infosAbout(m, "bob")[0].Sid; got != jb.Participant.Sid {
		t.Errorf("alice's update about bob has sid %q, bob joined as %q", got, jb.Participant.Sid)
	}

	listed, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: room})
	must(t, "ListParticipants", err)
	if got := identities(listed.Participants); len(got) != 2 || got[0] != "alice" || got[1] != "bob" {
		t.Fatalf("ListParticipants = %v, want [alice bob]", got)
	}
	for _, j := range []*livekit.ParticipantInfo{ja.Participant, jb.Participant} {
		l := byIdentity(listed.Participants, j.Identity)
		agreesWithJoin(t, "ListParticipants "+j.Identity, l, j)
		got, err := c.GetParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: room, Identity: j.Identity})
		must(t, "GetParticipant "+j.Identity, err)
		agreesWithJoin(t, "GetParticipant "+j.Identity, got, j)
		// Nothing happened between the two calls: the same snapshot.
		if !proto.Equal(got, l) {
			t.Errorf("GetParticipant %s = %v\nListParticipants had %v", j.Identity, got, l)
		}
	}
	// bob joined with the same name pattern as alice, but without metadata.
	if b := byIdentity(listed.Participants, "bob"); b.Name != "bob name" || b.Metadata != "" {
		t.Errorf("bob listed with name %q metadata %q, want %q and none", b.Name, b.Metadata, "bob name")
	}

	rooms, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{room}})
	must(t, "ListRooms", err)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].NumParticipants != 2 || rooms.Rooms[0].Sid != ja.Room.Sid {
		t.Errorf("ListRooms(%q) = %v, want one room %s with 2 participants", room, rooms.Rooms, ja.Room.Sid)
	}
	noProblems(t, alice, bob)
}

func TestSessionsUpdateParticipantRevokesPublishing(t *testing.T) {
	c := devClient()
	room := Unique("go-sess-revoke")
	obs := joinRoom(t, dev.URL, joinToken(t, room, "observer", ""), "observer")
	pub := joinRoom(t, dev.URL, joinToken(t, room, "speaker", ""), "speaker")
	psid := pub.Join.Participant.Sid
	if !pub.Join.Participant.Permission.GetCanPublish() {
		t.Fatalf("speaker joined without can_publish: %v", pub.Join.Participant.Permission)
	}
	mic := pub.AddTrack(t, "mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE)
	if !strings.HasPrefix(mic.Sid, "TR_") || mic.Type != livekit.TrackType_AUDIO || mic.Source != livekit.TrackSource_MICROPHONE {
		t.Errorf("published track = %v, want a TR_ sid, AUDIO, MICROPHONE", mic)
	}
	obs.WaitFor(t, updateAbout("speaker", func(p *livekit.ParticipantInfo) bool { return len(p.Tracks) == 1 && p.Tracks[0].Sid == mic.Sid }),
		0, fastWait, "the speaker's mic")

	obsMark, pubMark := obs.Mark(), pub.Mark()
	info, err := c.UpdateParticipant(ctx(t), &livekit.UpdateParticipantRequest{
		Room:       room,
		Identity:   "speaker",
		Metadata:   "back to the audience",
		Permission: &livekit.ParticipantPermission{CanSubscribe: true, CanPublish: false, CanPublishData: true},
	})
	must(t, "UpdateParticipant", err)
	if info.Sid != psid || info.Metadata != "back to the audience" || info.Permission.GetCanPublish() ||
		!info.Permission.GetCanSubscribe() || !info.Permission.GetCanPublishData() || len(info.Tracks) != 0 {
		t.Errorf("UpdateParticipant answered sid %q metadata %q permission %v tracks %v; want %s, the new metadata, publish revoked, no tracks",
			info.Sid, info.Metadata, info.Permission, trackSIDs(info), psid)
	}

	// The owner is told its track is gone ...
	_, m := pub.WaitFor(t, isKind("track_unpublished"), pubMark, fastWait, "track_unpublished")
	if got := m.GetTrackUnpublished().TrackSid; got != mic.Sid {
		t.Errorf("track_unpublished names %q, want the mic %q", got, mic.Sid)
	}
	// ... and both see the new state.
	revoked := func(p *livekit.ParticipantInfo) bool {
		return p.Sid == psid && p.Metadata == "back to the audience" && !p.Permission.GetCanPublish() && len(p.Tracks) == 0
	}
	obs.WaitFor(t, updateAbout("speaker", revoked), obsMark, fastWait, "the speaker's update (observer)")
	pub.WaitFor(t, updateAbout("speaker", revoked), pubMark, fastWait, "its own update (speaker)")
	// Its new token says so too, and verifies with the key's secret.
	pub.WaitFor(t, func(m *livekit.SignalResponse) bool {
		tok := m.GetRefreshToken()
		if tok == "" {
			return false
		}
		v, err := auth.ParseAPIToken(tok)
		if err != nil {
			return false
		}
		_, g, err := v.Verify(DevSecret)
		return err == nil && v.Identity() == "speaker" && g.Video != nil && !g.Video.GetCanPublish() && g.Metadata == "back to the audience"
	}, pubMark, fastWait, "a refresh_token without canPublish")

	got, err := c.GetParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "speaker"})
	must(t, "GetParticipant", err)
	if !revoked(got) {
		t.Errorf("GetParticipant after the update = %v", got)
	}

	// Publishing is now refused.
	since := pub.Mark()
	must(t, "send add_track", pub.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{
		Cid: "again", Name: "again", Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE,
	}}}))
	_, m = pub.WaitFor(t, isKind("request_response"), since, fastWait, "the refusal of add_track")
	if m.GetRequestResponse().Reason != livekit.RequestResponse_NOT_ALLOWED {
		t.Errorf("request_response = %v, want NOT_ALLOWED", m.GetRequestResponse())
	}

	obs.Fence(t)
	pub.Fence(t)
	if n := pub.All(isKind("track_published"), 0); len(n) != 1 {
		t.Errorf("speaker got %d track_published, want only the mic's; %s", len(n), pub.Summary())
	}
	for _, k := range []string{"track_unpublished", "track_published", "mute", "leave", "request_response"} {
		if n := obs.All(isKind(k), 0); len(n) != 0 {
			t.Errorf("the observer got %s (only the owner should); %s", k, obs.Summary())
		}
	}
	noProblems(t, obs, pub)
}

func TestSessionsRemoteMute(t *testing.T) {
	c := devClient()
	room := Unique("go-sess-mute")
	obs := joinRoom(t, dev.URL, joinToken(t, room, "observer", ""), "observer")
	spk := joinRoom(t, dev.URL, joinToken(t, room, "speaker", ""), "speaker")
	mic := spk.AddTrack(t, "mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE)
	obs.WaitFor(t, updateAbout("speaker", func(p *livekit.ParticipantInfo) bool { return len(p.Tracks) == 1 }), 0, fastWait, "the speaker's mic")
	micMuted := func(want bool) Pred {
		return updateAbout("speaker", func(p *livekit.ParticipantInfo) bool {
			return len(p.Tracks) == 1 && p.Tracks[0].Sid == mic.Sid && p.Tracks[0].Muted == want
		})
	}

	obsMark, spkMark := obs.Mark(), spk.Mark()
	res, err := c.MutePublishedTrack(ctx(t), &livekit.MuteRoomTrackRequest{Room: room, Identity: "speaker", TrackSid: mic.Sid, Muted: true})
	must(t, "MutePublishedTrack mute", err)
	if res.Track.GetSid() != mic.Sid || !res.Track.GetMuted() {
		t.Errorf("MutePublishedTrack answered %v, want the mic, muted", res.Track)
	}
	iMute, m := spk.WaitFor(t, isKind("mute"), spkMark, fastWait, "the mute request")
	if r := m.GetMute(); r.Sid != mic.Sid || !r.Muted {
		t.Errorf("mute = %v, want sid %s muted", r, mic.Sid)
	}
	// The owner is asked first, then everyone sees the muted track.
	iUpd, _ := spk.WaitFor(t, micMuted(true), spkMark, fastWait, "the mic muted (speaker)")
	if iUpd < iMute {
		t.Errorf("the speaker saw its mic muted (#%d) before the mute request (#%d); %s", iUpd, iMute, spk.Summary())
	}
	obs.WaitFor(t, micMuted(true), obsMark, fastWait, "the mic muted (observer)")

	// Remote unmute is off by default (room.enable_remote_unmute).
	obsMark, spkMark = obs.Mark(), spk.Mark()
	_, err = c.MutePublishedTrack(ctx(t), &livekit.MuteRoomTrackRequest{Room: room, Identity: "speaker", TrackSid: mic.Sid, Muted: false})
	wantTwirp(t, "MutePublishedTrack unmute", err, twirp.FailedPrecondition, RemoteUnmuteOff)
	spk.Fence(t)
	obs.Fence(t)
	if got := spk.All(isKind("mute"), spkMark); len(got) != 0 {
		t.Errorf("a refused unmute sent %d mute request(s); %s", len(got), spk.Summary())
	}
	for _, cl := range []*SignalClient{obs, spk} {
		since := obsMark
		if cl == spk {
			since = spkMark
		}
		if got := cl.All(micMuted(false), since); len(got) != 0 {
			t.Errorf("%s saw the mic unmuted after a refused unmute; %s", cl.Label, cl.Summary())
		}
	}
	got, err := c.GetParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "speaker"})
	must(t, "GetParticipant", err)
	if len(got.Tracks) != 1 || !got.Tracks[0].Muted {
		t.Errorf("GetParticipant tracks = %v, want the mic still muted", got.Tracks)
	}
	if n := obs.All(isKind("mute"), 0); len(n) != 0 {
		t.Errorf("the observer got a mute request; %s", obs.Summary())
	}
	noProblems(t, obs, spk)
}

func TestSessionsRemoveParticipant(t *testing.T) {
	c := devClient()
	room := Unique("go-sess-remove")
	host := joinRoom(t, dev.URL, joinToken(t, room, "host", ""), "host")
	guest := joinRoom(t, dev.URL, joinToken(t, room, "guest", ""), "guest")
	gsid := guest.Join.Participant.Sid
	// Wait until the host knows the guest, so its DISCONNECTED below is about a known session.
	host.WaitFor(t, updateAbout("guest", nil), 0, defaultWait, "guest JOINED")

	hostMark := host.Mark()
	_, err := c.RemoveParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "guest"})
	must(t, "RemoveParticipant", err)

	_, m := guest.WaitFor(t, isKind("leave"), 0, fastWait, "the removal leave")
	if l := m.GetLeave(); l.Reason != livekit.DisconnectReason_PARTICIPANT_REMOVED || l.Action != livekit.LeaveRequest_DISCONNECT {
		t.Errorf("leave = reason %v action %v, want PARTICIPANT_REMOVED / DISCONNECT", l.Reason, l.Action)
	}
	guest.WaitClosed(t, fastWait)

	_, m = host.WaitFor(t, updateAbout("guest", func(p *livekit.ParticipantInfo) bool { return p.State == livekit.ParticipantInfo_DISCONNECTED }),
		hostMark, defaultWait, "guest DISCONNECTED")
	gone := infosAbout(m, "guest")[0]
	if gone.Sid != gsid || gone.DisconnectReason != livekit.DisconnectReason_PARTICIPANT_REMOVED {
		t.Errorf("host saw guest leave as %s (%v), want %s (PARTICIPANT_REMOVED)", gone.Sid, gone.DisconnectReason, gsid)
	}

	listed, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: room})
	must(t, "ListParticipants", err)
	if got := identities(listed.Participants); len(got) != 1 || got[0] != "host" {
		t.Errorf("ListParticipants after the removal = %v, want [host]", got)
	}
	_, err = c.GetParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "guest"})
	wantTwirp(t, "GetParticipant removed guest", err, twirp.NotFound, NotFoundParticipant)
	_, err = c.RemoveParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: room, Identity: "guest"})
	wantTwirp(t, "RemoveParticipant again", err, twirp.NotFound, NotFoundParticipant)

	if host.Closed() || len(host.All(isKind("leave"), 0)) != 0 {
		t.Errorf("the host was disturbed by the guest's removal; %s", host.Summary())
	}
	noProblems(t, host, guest)
}
