package sdkgo

// MoveParticipant and ForwardParticipant on connected participants, through the Go SDK's
// RoomServiceClient (which signs roomAdmin + room + destinationRoom for these calls).

import (
	"testing"

	"github.com/twitchtv/twirp"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

func TestMoveParticipant(t *testing.T) {
	c := devClient()
	src, dst := Unique("go-move-src"), Unique("go-move-dst")
	watcher := joinRoom(t, dev.URL, joinToken(t, dst, "watcher", ""), "watcher")
	alice := joinRoom(t, dev.URL, joinToken(t, src, "alice", "m0"), "alice") // protocol 16
	sid := alice.Join.Participant.Sid

	mark := alice.Mark()
	res, err := c.MoveParticipant(ctx(t), &livekit.MoveParticipantRequest{Room: src, Identity: "alice", DestinationRoom: dst})
	must(t, "MoveParticipant", err)
	if res == nil {
		t.Fatal("MoveParticipant returned a nil response")
	}

	// The participant keeps its socket and is told where it is now.
	_, m := alice.WaitFor(t, isKind("room_moved"), mark, fastWait, "room_moved")
	moved := m.GetRoomMoved()
	if moved.Room.GetName() != dst || moved.Room.GetSid() != watcher.Join.Room.Sid {
		t.Errorf("room_moved names room %q/%q, want the destination %q/%q",
			moved.Room.GetName(), moved.Room.GetSid(), dst, watcher.Join.Room.Sid)
	}
	if p := moved.Participant; p.GetIdentity() != "alice" || p.GetSid() != sid || p.GetMetadata() != "m0" {
		t.Errorf("room_moved participant = %v, want alice %s with metadata m0", p, sid)
	}
	if got := identities(moved.OtherParticipants); len(got) != 1 || got[0] != "watcher" {
		t.Errorf("room_moved other_participants = %v, want [watcher]", got)
	}

	// Its token is one the SDK's verifier accepts, for the same identity, in the destination.
	v, err := auth.ParseAPIToken(moved.Token)
	must(t, "ParseAPIToken(room_moved.token)", err)
	if v.APIKey() != DevKey || v.Identity() != "alice" {
		t.Errorf("room_moved token: key %q identity %q, want %q/alice", v.APIKey(), v.Identity(), DevKey)
	}
	_, grants, err := v.Verify(DevSecret)
	must(t, "Verify(room_moved.token)", err)
	if grants.Video == nil {
		t.Errorf("room_moved token has no video grant")
	} else if grants.Video.Room != dst || !grants.Video.RoomJoin {
		t.Errorf("room_moved token video grant: room %q roomJoin %v, want roomJoin for %q",
			grants.Video.Room, grants.Video.RoomJoin, dst)
	}
	if _, _, err := v.Verify(DevSecret + "-not"); err == nil {
		t.Error("room_moved token also verified with another secret")
	}

	// The API agrees: gone from the source, in the destination with the same sid.
	inSrc, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: src})
	must(t, "ListParticipants source", err)
	if len(inSrc.Participants) != 0 {
		t.Errorf("ListParticipants(source) = %v, want empty", identities(inSrc.Participants))
	}
	inDst, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: dst})
	must(t, "ListParticipants destination", err)
	if got := identities(inDst.Participants); len(got) != 2 || got[0] != "alice" || got[1] != "watcher" {
		t.Errorf("ListParticipants(destination) = %v, want [alice watcher]", got)
	} else if a := byIdentity(inDst.Participants, "alice"); a.Sid != sid {
		t.Errorf("alice listed in the destination as %s, was %s", a.Sid, sid)
	}
	_, err = c.GetParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: src, Identity: "alice"})
	wantTwirp(t, "GetParticipant in the source", err, twirp.NotFound, NotFoundParticipant)

	// The destination's participant sees it arrive with its sid.
	watcher.WaitFor(t, updateAbout("alice", func(p *livekit.ParticipantInfo) bool {
		return p.Sid == sid && p.State != livekit.ParticipantInfo_DISCONNECTED
	}), 0, defaultWait, "alice arriving")

	// The same socket is alive, and was not told to leave.
	alice.Fence(t)
	if len(alice.All(isKind("leave"), 0)) != 0 || alice.Closed() {
		t.Errorf("the moved participant got a leave or lost its socket; %s", alice.Summary())
	}
	noProblems(t, alice, watcher)
}

func TestForwardParticipant(t *testing.T) {
	c := devClient()
	src, dst := Unique("go-fwd-src"), Unique("go-fwd-dst")
	host := joinRoom(t, dev.URL, joinToken(t, src, "host", ""), "host")
	sid := host.Join.Participant.Sid
	mic := host.AddTrack(t, "mic", livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE)

	mark := host.Mark()
	res, err := c.ForwardParticipant(ctx(t), &livekit.ForwardParticipantRequest{Room: src, Identity: "host", DestinationRoom: dst})
	must(t, "ForwardParticipant", err)
	if res == nil {
		t.Fatal("ForwardParticipant returned a nil response")
	}

	// The destination lists the identity, same session, with its track.
	inDst, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: dst})
	must(t, "ListParticipants destination", err)
	if got := identities(inDst.Participants); len(got) != 1 || got[0] != "host" {
		t.Fatalf("ListParticipants(destination) = %v, want [host]", got)
	}
	fwd := inDst.Participants[0]
	if fwd.Sid != sid || len(fwd.Tracks) != 1 || fwd.Tracks[0].Sid != mic.Sid ||
		fwd.Tracks[0].Type != livekit.TrackType_AUDIO || fwd.Tracks[0].Source != livekit.TrackSource_MICROPHONE {
		t.Errorf("forwarded host = sid %s tracks %v, want %s with the mic %s", fwd.Sid, fwd.Tracks, sid, mic.Sid)
	}
	// A forward is not a move: the participant stays in its room.
	inSrc, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: src})
	must(t, "ListParticipants source", err)
	if got := identities(inSrc.Participants); len(got) != 1 || got[0] != "host" || inSrc.Participants[0].Sid != sid {
		t.Errorf("ListParticipants(source) = %v, want host still there", got)
	}

	// Once there, forwarding again is refused and changes nothing.
	_, err = c.ForwardParticipant(ctx(t), &livekit.ForwardParticipantRequest{Room: src, Identity: "host", DestinationRoom: dst})
	wantTwirp(t, "ForwardParticipant again", err, twirp.AlreadyExists, AlreadyThere)
	again, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: dst})
	must(t, "ListParticipants destination again", err)
	if len(again.Participants) != 1 || again.Participants[0].Sid != sid {
		t.Errorf("after the refused forward the destination lists %v", identities(again.Participants))
	}

	// The forwarded participant is neither moved nor disturbed.
	host.Fence(t)
	for _, k := range []string{"room_moved", "leave", "track_unpublished"} {
		if n := host.All(isKind(k), mark); len(n) != 0 {
			t.Errorf("the forwarded participant got %s; %s", k, host.Summary())
		}
	}
	noProblems(t, host)
}
