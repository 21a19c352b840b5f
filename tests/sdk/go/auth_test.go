package sdkgo

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twitchtv/twirp"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

// grantToken signs a dev-key token (default 6 h lifetime) with exactly this video grant.
func grantToken(t *testing.T, g *auth.VideoGrant) string {
	t.Helper()
	at := auth.NewAccessToken(DevKey, DevSecret)
	if g != nil {
		at.SetVideoGrant(g)
	}
	tok, err := at.ToJWT()
	must(t, "ToJWT", err)
	return tok
}

// wantPlain401 asserts that err came from a non-Twirp (plain text) 401 response:
// the Twirp client maps it to code unauthenticated and keeps the body in meta.
func wantPlain401(t *testing.T, what string, err error, bodyPrefix string) {
	t.Helper()
	te := twirpErr(t, what, err)
	if te.Code() != twirp.Unauthenticated {
		t.Errorf("%s: code = %q, want %q (msg %q)", what, te.Code(), twirp.Unauthenticated, te.Msg())
	}
	if got := te.Meta("status_code"); got != "401" {
		t.Errorf("%s: HTTP status = %q, want 401 (msg %q)", what, got, te.Msg())
	}
	if got := te.Meta("http_error_from_intermediary"); got != "true" {
		t.Errorf("%s: expected a plain-text (non-Twirp) body, got a Twirp error %q/%q", what, te.Code(), te.Msg())
	}
	if body := te.Meta("body"); !strings.HasPrefix(body, bodyPrefix) {
		t.Errorf("%s: body = %q, want prefix %q", what, body, bodyPrefix)
	}
}

func TestInsufficientGrants(t *testing.T) {
	admin := devClient()
	room, other := Unique("go-grants"), Unique("go-grants-other")
	_, err := admin.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: room, Metadata: "untouched"})
	must(t, "CreateRoom", err)
	_, err = admin.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: other})
	must(t, "CreateRoom other", err)

	cases := []struct {
		name  string
		grant *auth.VideoGrant
		call  func(c *lksdk.RoomServiceClient) error
	}{
		{"CreateRoom with roomList only", &auth.VideoGrant{RoomList: true}, func(c *lksdk.RoomServiceClient) error {
			_, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: Unique("go-grants-new")})
			return err
		}},
		{"CreateRoom with roomAdmin only", &auth.VideoGrant{RoomAdmin: true, Room: room}, func(c *lksdk.RoomServiceClient) error {
			_, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: Unique("go-grants-new")})
			return err
		}},
		{"ListRooms with roomCreate only", &auth.VideoGrant{RoomCreate: true}, func(c *lksdk.RoomServiceClient) error {
			_, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{})
			return err
		}},
		{"ListRooms without video grant", nil, func(c *lksdk.RoomServiceClient) error {
			_, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{})
			return err
		}},
		{"DeleteRoom with roomAdmin for the room", &auth.VideoGrant{RoomAdmin: true, Room: room}, func(c *lksdk.RoomServiceClient) error {
			_, err := c.DeleteRoom(ctx(t), &livekit.DeleteRoomRequest{Room: room})
			return err
		}},
		{"UpdateRoomMetadata with roomAdmin for another room", &auth.VideoGrant{RoomAdmin: true, Room: other}, func(c *lksdk.RoomServiceClient) error {
			_, err := c.UpdateRoomMetadata(ctx(t), &livekit.UpdateRoomMetadataRequest{Room: room, Metadata: "hijacked"})
			return err
		}},
		{"UpdateRoomMetadata with room but no roomAdmin", &auth.VideoGrant{RoomJoin: true, Room: room}, func(c *lksdk.RoomServiceClient) error {
			_, err := c.UpdateRoomMetadata(ctx(t), &livekit.UpdateRoomMetadataRequest{Room: room, Metadata: "hijacked"})
			return err
		}},
		{"ListParticipants with roomCreate+roomList", &auth.VideoGrant{RoomCreate: true, RoomList: true}, func(c *lksdk.RoomServiceClient) error {
			_, err := c.ListParticipants(ctx(t), &livekit.ListParticipantsRequest{Room: room})
			return err
		}},
		{"MoveParticipant without destinationRoom", &auth.VideoGrant{RoomAdmin: true, Room: room}, func(c *lksdk.RoomServiceClient) error {
			_, err := c.MoveParticipant(ctx(t), &livekit.MoveParticipantRequest{Room: room, Identity: "alice", DestinationRoom: other})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tokenClient(t, dev.URL, grantToken(t, tc.grant))
			wantTwirp(t, tc.name, tc.call(c), twirp.Unauthenticated, PermissionsDenied)
		})
	}

	// Nothing above changed the rooms.
	res, err := admin.ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{room, other}})
	must(t, "ListRooms", err)
	if len(res.Rooms) != 2 || findRoom(res.Rooms, room) == nil || findRoom(res.Rooms, room).Metadata != "untouched" {
		t.Errorf("rooms after denied calls = %+v, want both rooms, metadata untouched", res.Rooms)
	}

	// The same hand-made-token path succeeds with the right grant.
	ok := tokenClient(t, dev.URL, grantToken(t, &auth.VideoGrant{RoomAdmin: true, Room: room}))
	updated, err := ok.UpdateRoomMetadata(ctx(t), &livekit.UpdateRoomMetadataRequest{Room: room, Metadata: "by-admin"})
	must(t, "UpdateRoomMetadata with roomAdmin for the room", err)
	if updated.Name != room || updated.Metadata != "by-admin" {
		t.Errorf("UpdateRoomMetadata = name %q metadata %q, want %q/by-admin", updated.Name, updated.Metadata, room)
	}

	// Move with exactly the grants the server checks passes auth and hits validation.
	mv := tokenClient(t, dev.URL, grantToken(t, &auth.VideoGrant{RoomAdmin: true, Room: room, DestinationRoom: room}))
	_, err = mv.MoveParticipant(ctx(t), &livekit.MoveParticipantRequest{Room: room, Identity: "alice", DestinationRoom: room})
	wantTwirp(t, "MoveParticipant same room (hand-made token)", err, twirp.InvalidArgument, SameRoom)
}

func TestWrongSecret(t *testing.T) {
	c := lksdk.NewRoomServiceClient(dev.URL, DevKey, "not-the-secret")
	_, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{})
	wantPlain401(t, "ListRooms with wrong secret", err, "invalid authorization token")

	name := Unique("go-wrongsecret")
	_, err = c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: name})
	wantPlain401(t, "CreateRoom with wrong secret", err, "invalid authorization token")
	res, err := devClient().ListRooms(ctx(t), &livekit.ListRoomsRequest{Names: []string{name}})
	must(t, "ListRooms", err)
	if len(res.Rooms) != 0 {
		t.Errorf("a rejected CreateRoom created %v", listNames(res.Rooms))
	}
}

func TestUnknownKey(t *testing.T) {
	c := lksdk.NewRoomServiceClient(dev.URL, "no-such-key", DevSecret)
	_, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{})
	wantPlain401(t, "ListRooms with unknown key", err, "invalid API key")
}

func TestExpiredToken(t *testing.T) {
	// golang-jwt directly: the SDK's minter cannot produce an expired token.
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":   DevKey,
		"nbf":   now.Add(-20 * time.Minute).Unix(),
		"exp":   now.Add(-10 * time.Minute).Unix(), // beyond the 60 s leeway
		"video": map[string]any{"roomList": true},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(DevSecret))
	must(t, "sign", err)
	_, err = tokenClient(t, dev.URL, tok).ListRooms(ctx(t), &livekit.ListRoomsRequest{})
	wantPlain401(t, "ListRooms with expired token", err, "invalid authorization token")

	// Same claims, still valid: accepted (so the rejection above is the expiry).
	claims["exp"] = now.Add(10 * time.Minute).Unix()
	tok, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(DevSecret))
	must(t, "sign", err)
	_, err = tokenClient(t, dev.URL, tok).ListRooms(ctx(t), &livekit.ListRoomsRequest{})
	must(t, "ListRooms with valid hand-signed token", err)
}

func TestConfigBodyKeysAndRoomDefaults(t *testing.T) {
	const key, secret = "go-key", "usher-go-sdk-suite-secret-0123456789abcd"
	yaml := "keys:\n  " + key + ": " + secret + "\n" +
		"room:\n  empty_timeout: 77\n  departure_timeout: 9\n  max_participants: 11\n"
	srv := startConfigured(t, yaml)

	c := lksdk.NewRoomServiceClient(srv.URL, key, secret)
	name := Unique("go-keyed")
	room, err := c.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: name, Metadata: "k"})
	must(t, "CreateRoom with configured key", err)
	if room.Name != name || room.Metadata != "k" || !roomSIDRE.MatchString(room.Sid) {
		t.Errorf("room = %+v", room)
	}
	if room.EmptyTimeout != 77 || room.DepartureTimeout != 9 || room.MaxParticipants != 11 {
		t.Errorf("config defaults: empty_timeout=%d departure_timeout=%d max_participants=%d, want 77/9/11",
			room.EmptyTimeout, room.DepartureTimeout, room.MaxParticipants)
	}
	res, err := c.ListRooms(ctx(t), &livekit.ListRoomsRequest{})
	must(t, "ListRooms", err)
	if len(res.Rooms) != 1 || res.Rooms[0].Sid != room.Sid {
		t.Errorf("ListRooms on the fresh server = %v, want only %q", listNames(res.Rooms), name)
	}

	// The dev key is not configured on this server.
	_, err = lksdk.NewRoomServiceClient(srv.URL, DevKey, DevSecret).ListRooms(ctx(t), &livekit.ListRoomsRequest{})
	wantPlain401(t, "ListRooms with devkey on a keyed server", err, "invalid API key")
}
