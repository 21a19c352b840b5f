package sdkgo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twitchtv/twirp"

	lksdk "github.com/livekit/server-sdk-go/v2"
)

// dev is the `usher --dev` server shared by every test in this package.
var dev *Usher

func TestMain(m *testing.M) {
	var err error
	dev, err = StartDev()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdkgo:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 && os.Getenv("USHER_SDK_LOGS") == "" {
		fmt.Fprintf(os.Stderr, "--- %s log (tail) ---\n%s\n", dev.Label, dev.Tail(40))
	}
	if err := dev.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "sdkgo:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// devClient is an official RoomServiceClient for the dev server (key/secret auth:
// the SDK mints a token with the grants each call needs).
func devClient() *lksdk.RoomServiceClient {
	return lksdk.NewRoomServiceClient(dev.URL, DevKey, DevSecret)
}

// tokenClient is an official RoomServiceClient that sends a fixed token verbatim.
func tokenClient(t *testing.T, url, token string) *lksdk.RoomServiceClient {
	t.Helper()
	api, err := lksdk.NewLiveKitAPI(lksdk.WithURL(url), lksdk.WithToken(token))
	if err != nil {
		t.Fatalf("NewLiveKitAPI: %v", err)
	}
	return api.Room()
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// must fails the test if err is non-nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

// twirpErr asserts that err is a twirp.Error and returns it.
func twirpErr(t *testing.T, what string, err error) twirp.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: expected an error, the call succeeded", what)
	}
	var te twirp.Error
	if !errors.As(err, &te) {
		t.Fatalf("%s: expected a twirp.Error, got %T: %v", what, err, err)
	}
	return te
}

// wantTwirp asserts err is a Twirp error with exactly this code and message.
func wantTwirp(t *testing.T, what string, err error, code twirp.ErrorCode, msg string) twirp.Error {
	t.Helper()
	te := twirpErr(t, what, err)
	if te.Code() != code || te.Msg() != msg {
		t.Fatalf("%s: got twirp error code=%q msg=%q, want code=%q msg=%q",
			what, te.Code(), te.Msg(), code, msg)
	}
	// A JSON Twirp error body, not a non-Twirp response mapped by the client.
	if v := te.Meta("http_error_from_intermediary"); v != "" {
		t.Fatalf("%s: error was not a Twirp JSON body (intermediary meta=%q, body=%q)", what, v, te.Meta("body"))
	}
	return te
}

// startConfigured starts an Usher of its own with an inline YAML config for one test, and
// stops it when the test ends (printing its log tail if the test failed).
func startConfigured(t *testing.T, yaml string) *Usher {
	t.Helper()
	srv, err := StartWithConfig(yaml)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s log (tail) ---\n%s", srv.Label, srv.Tail(40))
		}
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}
