package kafka

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

// permanentErrors are the broker's answers that no retry of the record can
// change: the record (or its batch) is too large or invalid, or the topic
// is invalid or may not be written.
var permanentErrors = []error{
	sarama.ErrMessageSizeTooLarge,      // MESSAGE_TOO_LARGE
	sarama.ErrMessageSetSizeTooLarge,   // RECORD_LIST_TOO_LARGE
	sarama.ErrInvalidRecord,            // INVALID_RECORD, e.g. no key on a compacted topic
	sarama.ErrInvalidTopic,             // INVALID_TOPIC_EXCEPTION
	sarama.ErrTopicAuthorizationFailed, // TOPIC_AUTHORIZATION_FAILED
}

// batchErrors are the permanent answers that the broker gives for a whole
// batch when one of its records is at fault, and the client's failure to
// encode a batch. Publish sends the records that get them once more, each on
// its own, before it believes them.
var batchErrors = []error{
	sarama.ErrMessageSizeTooLarge,
	sarama.ErrMessageSetSizeTooLarge,
	sarama.ErrInvalidRecord,
}

// unavailableErrors mean that the cluster, not the record, is the problem:
// it cannot be reached, has no leader or not enough in-sync replicas, or
// refuses this client as a whole.
var unavailableErrors = []error{
	sarama.ErrOutOfBrokers,
	sarama.ErrNotConnected,
	sarama.ErrClosedClient,
	sarama.ErrShuttingDown,
	sarama.ErrBrokerNotFound,
	sarama.ErrLeaderNotAvailable,
	sarama.ErrNotLeaderForPartition,
	sarama.ErrBrokerNotAvailable,
	sarama.ErrReplicaNotAvailable,
	sarama.ErrRequestTimedOut,
	sarama.ErrNetworkException,
	sarama.ErrNotEnoughReplicas,
	sarama.ErrNotEnoughReplicasAfterAppend,
	sarama.ErrKafkaStorageError,
	sarama.ErrFencedLeaderEpoch,
	sarama.ErrUnknownLeaderEpoch,
	sarama.ErrPreferredLeaderNotAvailable,
	sarama.ErrEligibleLeadersNotAvailable,
	sarama.ErrThrottlingQuotaExceeded,
	sarama.ErrSASLAuthenticationFailed,
	sarama.ErrClusterAuthorizationFailed, // the producer may not write at all: no record's fault
	io.EOF,
	io.ErrUnexpectedEOF,
	net.ErrClosed,
	os.ErrDeadlineExceeded,
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.ECONNABORTED,
	syscall.EPIPE,
	syscall.EHOSTUNREACH,
	syscall.ENETUNREACH,
	syscall.ETIMEDOUT,
}

// clientTooLarge starts the message of Sarama's ConfigurationError for a
// record larger than Producer.MaxMessageBytes.
const clientTooLarge = "Attempt to produce message larger than"

// Classify marks err, a failure to produce one record, for the relay:
//
//   - wrapped with outbox.Permanent when no retry can help: the record is
//     larger than MaxMessageBytes (Sarama's own check) or than the broker
//     accepts (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE; these also wrap
//     outbox.ErrMessageTooLarge), it is invalid
//     (INVALID_RECORD), the topic is invalid (INVALID_TOPIC_EXCEPTION) or
//     may not be written (TOPIC_AUTHORIZATION_FAILED), or Sarama cannot
//     encode it;
//   - wrapped as fmt.Errorf("%w: %w", outbox.ErrUnavailable, err) when the
//     cluster is the problem: Sarama ran out of brokers or is shut down, a
//     network error, no leader or not enough in-sync replicas left after
//     Sarama's retries (LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER,
//     NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...), failed authentication,
//     or CLUSTER_AUTHORIZATION_FAILED (the client may not produce at all);
//   - returned as is otherwise: the relay retries it with backoff.
//
// err may be a *sarama.ProducerError, a sarama.KError or any error wrapping
// them. An error already marked either way, and nil, are returned as they
// are.
func Classify(err error) error {
	switch {
	case err == nil, outbox.IsPermanent(err), errors.Is(err, outbox.ErrUnavailable):
		return err
	case isTooLarge(err):
		// Says so in the dead-letter table, and errors.Is finds it.
		return outbox.Permanent(fmt.Errorf("%w: %w", outbox.ErrMessageTooLarge, err))
	case isPermanent(err):
		return outbox.Permanent(err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", outbox.ErrUnavailable, err)
	}
	return err
}

// isTooLarge reports whether the record was refused for its size, by
// Sarama's own check or by the broker.
func isTooLarge(err error) bool {
	if errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrMessageSetSizeTooLarge) {
		return true
	}
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) && strings.HasPrefix(string(ce), clientTooLarge)
}

// isPermanent reports the other answers no retry can change (Classify
// asks isTooLarge first).
func isPermanent(err error) bool {
	var pe sarama.PacketEncodingError
	return isAny(err, permanentErrors) || errors.As(err, &pe)
}

func isUnavailable(err error) bool {
	if isAny(err, unavailableErrors) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// isBatchError reports whether err may be the fault of another record of
// the same batch.
func isBatchError(err error) bool {
	var pe sarama.PacketEncodingError
	return isAny(err, batchErrors) || errors.As(err, &pe)
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// sequenceErrors mean the broker does not know the producer id's sequence
// for the partition (it restarted, or the id expired): the batch was not
// appended, and a new producer id is needed.
var sequenceErrors = []error{
	sarama.ErrOutOfOrderSequenceNumber,
	sarama.ErrUnknownProducerID,
	sarama.ErrInvalidProducerEpoch,
	sarama.ErrInvalidProducerIDMapping,
}

func isSequenceError(err error) bool { return isAny(err, sequenceErrors) }

func errorsIsUnknownTopic(err error) bool { return errors.Is(err, sarama.ErrUnknownTopicOrPartition) }

func errorsIsNone(err error) bool { return err == nil || errors.Is(err, sarama.ErrNoError) }

// notAppendedErrors are the retriable answers a broker gives before it
// appends a batch: a retry after them cannot duplicate nor leave the
// sequence in doubt. REQUEST_TIMED_OUT and NOT_ENOUGH_REPLICAS_AFTER_APPEND
// are not among them (the leader may have appended it).
var notAppendedErrors = []error{
	sarama.ErrNotLeaderForPartition,
	sarama.ErrLeaderNotAvailable,
	sarama.ErrUnknownTopicOrPartition,
	sarama.ErrNotEnoughReplicas,
	sarama.ErrInvalidMessage,
	sarama.ErrFencedLeaderEpoch,
	sarama.ErrUnknownLeaderEpoch,
	sarama.ErrKafkaStorageError,
}

func isNotAppended(err error) bool { return isAny(err, notAppendedErrors) || isSequenceError(err) }
