package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scramMinIterations is Kafka's lower bound on SCRAM iterations. A server
// that asks for fewer is refused: fewer iterations make a captured proof
// cheaper to crack.
const scramMinIterations = 4096

// scramClient is a SCRAM client (RFC 5802) for SCRAM-SHA-256 and
// SCRAM-SHA-512 as Kafka does them: the user name is escaped as a
// saslname, the password is used as its UTF-8 bytes (Kafka applies no
// SASLprep), and no channel binding. It implements sarama.SCRAMClient.
type scramClient struct {
	hash func() hash.Hash

	user, password, authzID string
	nonce                   string // the client's part of the nonce
	clientFirstBare         string
	serverSignature         []byte
	step                    int
	done                    bool
}

// Begin starts a conversation for user and password.
func (s *scramClient) Begin(user, password, authzID string) error {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("scram: making a nonce: %w", err)
	}
	*s = scramClient{hash: s.hash, user: user, password: password, authzID: authzID,
		nonce: base64.RawStdEncoding.EncodeToString(b[:])}
	s.clientFirstBare = "n=" + saslName(user) + ",r=" + s.nonce
	return nil
}

func (s *scramClient) gs2Header() string {
	if s.authzID == "" {
		return "n,,"
	}
	return "n,a=" + saslName(s.authzID) + ","
}

// Step answers the server's challenge: "" for the client's first message,
// then the server's first message, then its final one.
func (s *scramClient) Step(challenge string) (string, error) {
	s.step++
	switch s.step {
	case 1:
		return s.gs2Header() + s.clientFirstBare, nil
	case 2:
		return s.clientFinal(challenge)
	case 3:
		s.done = true
		return "", s.verify(challenge)
	}
	return "", errors.New("scram: conversation is over")
}

// Done reports whether the conversation is over.
func (s *scramClient) Done() bool { return s.done }

func (s *scramClient) clientFinal(serverFirst string) (string, error) {
	attrs, err := scramAttrs(serverFirst)
	if err != nil {
		return "", err
	}
	if _, ok := attrs['m']; ok {
		return "", errors.New("scram: server requires an unsupported extension")
	}
	nonce := attrs['r']
	if len(nonce) <= len(s.nonce) || !strings.HasPrefix(nonce, s.nonce) {
		return "", errors.New("scram: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs['s'])
	if err != nil || len(salt) == 0 {
		return "", errors.New("scram: server sent an invalid salt")
	}
	iter, err := strconv.Atoi(attrs['i'])
	if err != nil || iter < scramMinIterations {
		return "", fmt.Errorf("scram: server asks for %q iterations; at least %d are needed", attrs['i'], scramMinIterations)
	}
	salted, err := pbkdf2.Key(s.hash, s.password, salt, iter, s.hash().Size())
	if err != nil {
		return "", fmt.Errorf("scram: deriving the key: %w", err)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(s.gs2Header())) + ",r=" + nonce
	authMessage := []byte(s.clientFirstBare + "," + serverFirst + "," + withoutProof)

	clientKey := s.hmac(salted, []byte("Client Key"))
	h := s.hash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	proof := s.hmac(storedKey, authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	s.serverSignature = s.hmac(s.hmac(salted, []byte("Server Key")), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (s *scramClient) verify(serverFinal string) error {
	attrs, err := scramAttrs(serverFinal)
	if err != nil {
		return err
	}
	if e, ok := attrs['e']; ok {
		return fmt.Errorf("scram: server refused the authentication: %s", e)
	}
	sig, err := base64.StdEncoding.DecodeString(attrs['v'])
	if err != nil || subtle.ConstantTimeCompare(sig, s.serverSignature) != 1 {
		return errors.New("scram: the server's signature does not match: it does not know the password")
	}
	return nil
}

func (s *scramClient) hmac(key, msg []byte) []byte {
	m := hmac.New(s.hash, key)
	m.Write(msg)
	return m.Sum(nil)
}

// scramAttrs parses "a=1,b=2" into its attributes.
func scramAttrs(msg string) (map[byte]string, error) {
	attrs := make(map[byte]string)
	for _, part := range strings.Split(msg, ",") {
		if len(part) < 2 || part[1] != '=' {
			return nil, fmt.Errorf("scram: malformed server message (attribute %q)", truncate(part, 32))
		}
		attrs[part[0]] = part[2:]
	}
	return attrs, nil
}

// saslName escapes a user name as RFC 5802 requires.
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
