package kafka

import (
	"fmt"

	"github.com/xdg-go/scram"
)

// scramMinIterations is Kafka's lower bound on SCRAM iterations. A server
// that asks for fewer is refused: fewer iterations make a captured proof
// cheaper to crack.
const scramMinIterations = 4096

// scramClient adapts github.com/xdg-go/scram to sarama.SCRAMClient, as
// Sarama's documentation does. It uses the unprepped client: Kafka applies
// no SASLprep to the password, so neither may the client. The library's
// errors never contain the password; Step still redacts it, in case.
type scramClient struct {
	hash scram.HashGeneratorFcn
	// nonce, when set, replaces the random nonce (tests replay RFC vectors).
	nonce scram.NonceGeneratorFcn

	password string
	conv     *scram.ClientConversation
}

// Begin starts a conversation for user and password.
func (s *scramClient) Begin(user, password, authzID string) error {
	c, err := s.hash.NewClientUnprepped(user, password, authzID)
	if err != nil {
		return fmt.Errorf("scram: %s", redact(err.Error(), password))
	}
	c = c.WithMinIterations(scramMinIterations)
	if s.nonce != nil {
		c = c.WithNonceGenerator(s.nonce)
	}
	s.password = password
	s.conv = c.NewConversation()
	return nil
}

// Step answers the server's challenge: "" for the client's first message,
// then the server's first message, then its final one.
func (s *scramClient) Step(challenge string) (string, error) {
	resp, err := s.conv.Step(challenge)
	if err != nil {
		return "", fmt.Errorf("scram: %s", redact(err.Error(), s.password))
	}
	return resp, nil
}

// Done reports whether the conversation is over.
func (s *scramClient) Done() bool { return s.conv.Done() }
