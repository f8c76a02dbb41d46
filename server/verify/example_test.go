package verify_test

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hookstream/hookstream/server/verify"
)

func ExampleSvix() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	// A fixed clock, so the example's output does not depend on when it runs; a server passes
	// nil for time.Now.
	sent := time.Unix(1614265330, 0)
	now := func() time.Time { return sent.Add(10 * time.Second) }

	body := []byte(`{"test": 2432232314}`)
	sig, err := verify.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", sent, body)
	if err != nil {
		fmt.Println(err)
		return
	}
	h := http.Header{}
	h.Set("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("svix-timestamp", strconv.FormatInt(sent.Unix(), 10))
	h.Set("svix-signature", sig)

	v, err := verify.Svix([]string{secret}, 5*time.Minute, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sig)
	fmt.Println(verify.Verify(v, h, nil, body))
	fmt.Println(verify.SvixID(h))
	err = verify.Verify(v, h, nil, []byte(`{"test": 0}`))
	fmt.Println(errors.Is(err, verify.ErrUnauthenticated), errors.Is(err, verify.ErrBadCredentials))
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// <nil>
	// msg_p5jXN8AQM9LWM0D4loKWxJek
	// true true
}

func ExampleAll() {
	// A listener that requires its Bearer token and an HMAC of the body, GitHub style.
	sig, err := verify.HMAC("X-Hub-Signature-256", "sha256", "sha256=", "hex", []string{"hmac-secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	v := verify.All(verify.Bearer([]string{"mwt_listener_token"}), sig)

	h := http.Header{}
	h.Set("Authorization", "Bearer mwt_listener_token")
	err = verify.Verify(v, h, nil, []byte(`{"event_type":"incident.created"}`))
	fmt.Println(errors.Is(err, verify.ErrMissingCredentials))
	// Output:
	// true
}
