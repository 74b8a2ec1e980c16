package kafka

import (
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

// TestSCRAMSHA256Vector replays the exchange of RFC 7677, section 3.
func TestSCRAMSHA256Vector(t *testing.T) {
	c := &scramClient{hash: scram.SHA256, nonce: func() string { return "rOprNGfwEbeRWgbNEkqO" }}
	if err := c.Begin("user", "pencil", ""); err != nil {
		t.Fatal(err)
	}
	first, err := c.Step("")
	if err != nil || first != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" {
		t.Fatalf("client-first = %q, %v", first, err)
	}
	final, err := c.Step("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if err != nil || final != want {
		t.Fatalf("client-final = %q, %v; want %q", final, err, want)
	}
	if c.Done() {
		t.Fatal("done before the server's final message")
	}
	if _, err := c.Step("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err != nil {
		t.Fatalf("server-final refused: %v", err)
	}
	if !c.Done() {
		t.Fatal("not done after the server's final message")
	}
}

// TestSCRAMUnprepped checks that the password reaches the key derivation
// as its bytes: Kafka applies no SASLprep, and a prepping client would
// refuse or change passwords such as this one.
func TestSCRAMUnprepped(t *testing.T) {
	c := &scramClient{hash: scram.SHA512}
	if err := c.Begin("u", "pass\u0007word", ""); err != nil {
		t.Fatalf("unprepped client refused a control character: %v", err)
	}
}

func TestSCRAMRefusals(t *testing.T) {
	const nonce = "clientnonce"
	begin := func() *scramClient {
		c := &scramClient{hash: scram.SHA512, nonce: func() string { return nonce }}
		if err := c.Begin("u=ser,1", "secret-pw", ""); err != nil {
			t.Fatal(err)
		}
		first, err := c.Step("")
		if err != nil || !strings.HasPrefix(first, "n,,n=u=3Dser=2C1,r=") {
			t.Fatalf("client-first = %q, %v", first, err)
		}
		return c
	}
	for name, serverFirst := range map[string]string{
		"foreign nonce":   "r=somethingelse,s=c2FsdA==,i=4096",
		"few iterations":  "r=%sxyz,s=c2FsdA==,i=1000",
		"bad salt":        "r=%sxyz,s=***,i=4096",
		"extension":       "m=ext,r=%sxyz,s=c2FsdA==,i=4096",
		"malformed":       "garbage",
		"empty attribute": "r=%sxyz,,i=4096",
	} {
		c := begin()
		msg := strings.ReplaceAll(serverFirst, "%s", nonce)
		if _, err := c.Step(msg); err == nil {
			t.Errorf("%s: server-first %q accepted", name, msg)
		} else if strings.Contains(err.Error(), "secret-pw") || !strings.HasPrefix(err.Error(), "scram: ") {
			t.Errorf("%s: error %q", name, err)
		}
	}

	c := begin()
	if _, err := c.Step("r=" + nonce + "xyz,s=c2FsdA==,i=4096"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Step("v=AAAA"); err == nil {
		t.Error("wrong server signature accepted")
	}
	c = begin()
	if _, err := c.Step("r=" + nonce + "xyz,s=c2FsdA==,i=4096"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Step("e=invalid-proof"); err == nil || !strings.Contains(err.Error(), "invalid-proof") {
		t.Errorf("server error: %v", err)
	}
}
