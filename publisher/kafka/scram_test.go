package kafka

import (
	"crypto/sha256"
	"crypto/sha512"
	"strings"
	"testing"
)

// TestSCRAMSHA256Vector replays the exchange of RFC 7677, section 3.
func TestSCRAMSHA256Vector(t *testing.T) {
	c := &scramClient{hash: sha256.New}
	if err := c.Begin("user", "pencil", ""); err != nil {
		t.Fatal(err)
	}
	c.nonce = "rOprNGfwEbeRWgbNEkqO" // the RFC's client nonce
	c.clientFirstBare = "n=user,r=" + c.nonce

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

func TestSCRAMRefusals(t *testing.T) {
	begin := func() *scramClient {
		c := &scramClient{hash: sha512.New}
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
		"same nonce":      "r=%s,s=c2FsdA==,i=4096",
		"few iterations":  "r=%sxyz,s=c2FsdA==,i=1000",
		"bad salt":        "r=%sxyz,s=***,i=4096",
		"extension":       "m=ext,r=%sxyz,s=c2FsdA==,i=4096",
		"malformed":       "garbage",
		"empty attribute": "r=%sxyz,,i=4096",
	} {
		c := begin()
		msg := strings.ReplaceAll(serverFirst, "%s", c.nonce)
		if _, err := c.Step(msg); err == nil {
			t.Errorf("%s: server-first %q accepted", name, msg)
		} else if strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("%s: error has the password: %v", name, err)
		}
	}

	c := begin()
	if _, err := c.Step("r=" + c.nonce + "xyz,s=c2FsdA==,i=4096"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Step("v=AAAA"); err == nil {
		t.Error("wrong server signature accepted")
	}
	c = begin()
	if _, err := c.Step("r=" + c.nonce + "xyz,s=c2FsdA==,i=4096"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Step("e=invalid-proof"); err == nil || !strings.Contains(err.Error(), "invalid-proof") {
		t.Errorf("server error: %v", err)
	}
}
