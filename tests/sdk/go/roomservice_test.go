package sdkgo

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/twitchtv/twirp"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

var roomSIDRE = regexp.MustCompile(`^RM_[0-9A-Za-z]{12}$`)

// listNames returns the sorted room names in a ListRooms response.
func listNames(rooms []*livekit.Room) []string {
	out := make([]string, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

func findRoom(rooms []*livekit.Room, name string) *livekit.Room {
	for _, r := range rooms {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func TestCreateRoomFields(t *testing.T) {
	// Record what the SDK puts on the wire, to be sure this suite covers the
	// protobuf encoding (the SDK decoded the reply, so Usher answered in kind).
	var contentType, path string
	c := lksdk.NewRoomServiceClient(dev.URL, DevKey, DevSecret, twirp.WithClientHooks(&twirp.ClientHooks{
		RequestPrepared: func(ctx context.Context, r *http.Request) (context.Context, error) {
			contentType, path = r.Header.Get("Content-Type"), r.URL.Path
			return ctx, nil
		},
	}))
	name := Unique("go-create")
	before := time.Now()
	room, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{
		Name:            name,
		MaxParticipants: 7,
		Metadata:        `{"owner":"go-sdk"}`,
	})
	after := time.Now()
	must(t, "CreateRoom", err)
	if contentType != "application/protobuf" || path != "/twirp/livekit.RoomService/CreateRoom" {
		t.Errorf("SDK request: Content-Type %q path %q, want application/protobuf to /twirp/livekit.RoomService/CreateRoom",
			contentType, path)
	}

	if room.Name != name {
		t.Errorf("name = %q, want %q", room.Name, name)
	}
	if !roomSIDRE.MatchString(room.Sid) {
		t.Errorf("sid = %q, want RM_ + 12 alphanumerics", room.Sid)
	}
	if room.EmptyTimeout != 300 {
		t.Errorf("empty_timeout = %d, want default 300", room.EmptyTimeout)
	}
	if room.DepartureTimeout != 20 {
		t.Errorf("departure_timeout = %d, want default 20", room.DepartureTimeout)
	}
	if room.MaxParticipants != 7 {
		t.Errorf("max_participants = %d, want 7", room.MaxParticipants)
	}
	if room.Metadata != `{"owner":"go-sdk"}` {
		t.Errorf("metadata = %q", room.Metadata)
	}
	if room.NumParticipants != 0 || room.NumPublishers != 0 || room.ActiveRecording {
		t.Errorf("new room counts: participants=%d publishers=%d recording=%v, want 0/0/false",
			room.NumParticipants, room.NumPublishers, room.ActiveRecording)
	}
	// creation_time (s) and creation_time_ms lie within the call and agree.
	lo, hi := before.Unix()-1, after.Unix()+1
	if room.CreationTime < lo || room.CreationTime > hi {
		t.Errorf("creation_time = %d, want within [%d, %d]", room.CreationTime, lo, hi)
	}
	loMs, hiMs := before.UnixMilli()-1000, after.UnixMilli()+1000
	if room.CreationTimeMs < loMs || room.CreationTimeMs > hiMs {
		t.Errorf("creation_time_ms = %d, want within [%d, %d]", room.CreationTimeMs, loMs, hiMs)
	}
	if room.CreationTimeMs/1000 != room.CreationTime {
		t.Errorf("creation_time_ms/1000 = %d, creation_time = %d; want equal",
			room.CreationTimeMs/1000, room.CreationTime)
	}

	// Explicit timeouts override the defaults.
	name2 := Unique("go-create-timeouts")
	room2, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{
		Name:             name2,
		EmptyTimeout:     42,
		DepartureTimeout: 7,
	})
	must(t, "CreateRoom with timeouts", err)
	if room2.EmptyTimeout != 42 || room2.DepartureTimeout != 7 || room2.MaxParticipants != 0 || room2.Metadata != "" {
		t.Errorf("room2: empty_timeout=%d departure_timeout=%d max_participants=%d metadata=%q, want 42/7/0/\"\"",
			room2.EmptyTimeout, room2.DepartureTimeout, room2.MaxParticipants, room2.Metadata)
	}
	if room2.Sid == room.Sid || !roomSIDRE.MatchString(room2.Sid) {
		t.Errorf("room2 sid = %q (room1 %q): want a distinct RM_ sid", room2.Sid, room.Sid)
	}
}

func TestCreateRoomIsIdempotent(t *testing.T) {
	c := devClient()
	name := Unique("go-idem")
	first, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{
		Name: name, Metadata: "first", MaxParticipants: 5, EmptyTimeout: 60,
	})
	must(t, "CreateRoom #1", err)

	// Same name with different parameters: the existing room comes back unchanged.
	again, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{
		Name: name, Metadata: "second", MaxParticipants: 9, EmptyTimeout: 99, DepartureTimeout: 3,
	})
	must(t, "CreateRoom #2", err)
	if again.Sid != first.Sid {
		t.Errorf("sid changed: %q -> %q", first.Sid, again.Sid)
	}
	if again.Metadata != "first" || again.MaxParticipants != 5 || again.EmptyTimeout != 60 || again.DepartureTimeout != 20 {
		t.Errorf("second create changed the room: metadata=%q max=%d empty=%d departure=%d, want first/5/60/20",
			again.Metadata, again.MaxParticipants, again.EmptyTimeout, again.DepartureTimeout)
	}
	if again.CreationTime != first.CreationTime || again.CreationTimeMs != first.CreationTimeMs {
		t.Errorf("creation time changed: %d/%d -> %d/%d",
			first.CreationTime, first.CreationTimeMs, again.CreationTime, again.CreationTimeMs)
	}

	res, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{name}})
	must(t, "ListRooms", err)
	if len(res.Rooms) != 1 || res.Rooms[0].Sid != first.Sid {
		t.Errorf("ListRooms(%q) = %v, want exactly the one room %s", name, listNames(res.Rooms), first.Sid)
	}
}

func TestListRooms(t *testing.T) {
	c := devClient()
	a, b := Unique("go-list-a"), Unique("go-list-b")
	ra, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: a, Metadata: "meta-a"})
	must(t, "CreateRoom a", err)
	rb, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: b, MaxParticipants: 3})
	must(t, "CreateRoom b", err)

	all, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{})
	must(t, "ListRooms all", err)
	gotA, gotB := findRoom(all.Rooms, a), findRoom(all.Rooms, b)
	if gotA == nil || gotB == nil {
		t.Fatalf("ListRooms all = %v, missing %q or %q", listNames(all.Rooms), a, b)
	}
	if gotA.Sid != ra.Sid || gotA.Metadata != "meta-a" || gotA.EmptyTimeout != 300 || gotA.CreationTime != ra.CreationTime {
		t.Errorf("listed a = %+v, want sid %s metadata meta-a empty_timeout 300", gotA, ra.Sid)
	}
	if gotB.Sid != rb.Sid || gotB.MaxParticipants != 3 || gotB.Metadata != "" {
		t.Errorf("listed b = %+v, want sid %s max_participants 3", gotB, rb.Sid)
	}

	filtered, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{a, Unique("go-list-missing")}})
	must(t, "ListRooms filtered", err)
	if len(filtered.Rooms) != 1 || filtered.Rooms[0].Name != a || filtered.Rooms[0].Sid != ra.Sid {
		t.Errorf("ListRooms([a, missing]) = %v, want only %q", listNames(filtered.Rooms), a)
	}

	both, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{b, a}})
	must(t, "ListRooms both", err)
	if got, want := listNames(both.Rooms), []string{a, b}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ListRooms([b, a]) = %v, want %v", got, want)
	}

	none, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{Unique("go-list-missing")}})
	must(t, "ListRooms missing", err)
	if len(none.Rooms) != 0 {
		t.Errorf("ListRooms([missing]) = %v, want empty", listNames(none.Rooms))
	}
}

func TestUpdateRoomMetadata(t *testing.T) {
	c := devClient()
	name := Unique("go-meta")
	created, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: name, Metadata: "v1", MaxParticipants: 4})
	must(t, "CreateRoom", err)

	updated, err := c.UpdateRoomMetadata(ctx(t), &livekit.UpdateRoomMetadataRequest{Room: name, Metadata: "v2 ✓"})
	must(t, "UpdateRoomMetadata", err)
	if updated.Metadata != "v2 ✓" {
		t.Errorf("returned metadata = %q, want %q", updated.Metadata, "v2 ✓")
	}
	if updated.Sid != created.Sid || updated.Name != name || updated.MaxParticipants != 4 ||
		updated.EmptyTimeout != 300 || updated.CreationTime != created.CreationTime {
		t.Errorf("returned room = %+v; other fields should be unchanged from %+v", updated, created)
	}

	res, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{name}})
	must(t, "ListRooms", err)
	if len(res.Rooms) != 1 || res.Rooms[0].Metadata != "v2 ✓" {
		t.Errorf("ListRooms after update = %+v, want metadata %q", res.Rooms, "v2 ✓")
	}

	_, err = c.UpdateRoomMetadata(ctx(t), &livekit.UpdateRoomMetadataRequest{Room: Unique("go-meta-missing"), Metadata: "x"})
	wantTwirp(t, "UpdateRoomMetadata unknown room", err, twirp.NotFound, NotFoundRoom)
}

func TestParticipantsOfEmptyRoom(t *testing.T) {
	c := devClient()
	name := Unique("go-parts")
	_, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: name})
	must(t, "CreateRoom", err)

	res, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: name})
	must(t, "ListParticipants", err)
	if len(res.Participants) != 0 {
		t.Errorf("ListParticipants = %v, want empty", res.Participants)
	}
	// An unknown room is an empty list too, not an error.
	res, err = c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: Unique("go-parts-missing")})
	must(t, "ListParticipants unknown room", err)
	if len(res.Participants) != 0 {
		t.Errorf("ListParticipants(unknown room) = %v, want empty", res.Participants)
	}

	_, err = c.GetParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: name, Identity: "nobody"})
	wantTwirp(t, "GetParticipant", err, twirp.NotFound, NotFoundParticipant)

	_, err = c.RemoveParticipant(ctx(t), &livekit.RoomParticipantIdentity{Room: name, Identity: "nobody"})
	wantTwirp(t, "RemoveParticipant", err, twirp.NotFound, NotFoundParticipant)
}

func TestDeleteRoom(t *testing.T) {
	c := devClient()
	name, other := Unique("go-del"), Unique("go-del-other")
	_, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: name})
	must(t, "CreateRoom", err)
	ro, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: other})
	must(t, "CreateRoom other", err)

	resp, err := c.DeleteRoom(ctx(t), &livekit.DeleteRoomRequest{Room: name})
	must(t, "DeleteRoom", err)
	if resp == nil {
		t.Fatal("DeleteRoom returned a nil response")
	}

	res, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{name, other}})
	must(t, "ListRooms", err)
	if len(res.Rooms) != 1 || res.Rooms[0].Name != other || res.Rooms[0].Sid != ro.Sid {
		t.Errorf("ListRooms after delete = %v, want only %q", listNames(res.Rooms), other)
	}

	_, err = c.DeleteRoom(ctx(t), &livekit.DeleteRoomRequest{Room: name})
	wantTwirp(t, "DeleteRoom again", err, twirp.NotFound, NotFoundRoom)

	_, err = c.DeleteRoom(ctx(t), &livekit.DeleteRoomRequest{Room: Unique("go-del-never")})
	wantTwirp(t, "DeleteRoom never created", err, twirp.NotFound, NotFoundRoom)

	// The name can be reused: a fresh room with a new sid.
	again, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: name})
	must(t, "CreateRoom after delete", err)
	if again.Name != name || !roomSIDRE.MatchString(again.Sid) {
		t.Errorf("recreated room = %+v", again)
	}
}

func TestMoveAndForwardToSameRoom(t *testing.T) {
	c := devClient()
	name := Unique("go-move")
	_, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: name})
	must(t, "CreateRoom", err)

	// The SDK signs roomAdmin + room + destinationRoom for these calls.
	_, err = c.MoveParticipant(ctx(t), &livekit.MoveParticipantRequest{Room: name, Identity: "alice", DestinationRoom: name})
	wantTwirp(t, "MoveParticipant same room", err, twirp.InvalidArgument, SameRoom)

	_, err = c.ForwardParticipant(ctx(t), &livekit.ForwardParticipantRequest{Room: name, Identity: "alice", DestinationRoom: name})
	wantTwirp(t, "ForwardParticipant same room", err, twirp.InvalidArgument, SameRoom)
}
