package outbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzValidate: validation never panics, fails only with a *MessageError,
// and accepts exactly what the documented rules accept; Enqueue writes
// nothing when it fails.
func FuzzValidate(f *testing.F) {
	f.Add("orders", "id-1", []byte("k"), []byte("v"), "h", []byte("hv"), int64(0), 1024)
	f.Add("", "", []byte(nil), []byte(nil), "", []byte(nil), int64(-1), 0)
	f.Add("a/b", "\x00", []byte{0}, []byte{0xff}, "\xff", []byte{0}, int64(time.Hour), 10)
	f.Add("..", "é", []byte("key"), make([]byte, 300), HeaderID, []byte("x"), int64(0), 300)
	f.Fuzz(func(t *testing.T, topic, id string, key, value []byte, hk string, hv []byte, delay int64, limit int) {
		m := Message{Topic: topic, ID: id, Key: key, Value: value, Delay: time.Duration(delay)}
		if hk != "" || hv != nil {
			m.Headers = []Header{{Key: hk, Value: hv}}
		}
		err := Validate(limit, m)
		if err != nil {
			var me *MessageError
			if !errors.As(err, &me) || !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("Validate error %T %v is not a *MessageError", err, err)
			}
		} else {
			if checkTopic(topic) != "" || delay < 0 || (m.Headers != nil && (hk == "" || hk == HeaderID)) {
				t.Fatalf("Validate accepted %+v", m)
			}
		}
		o, cerr := New(Config{Dialect: nopDialect{}, MaxMessageBytes: max(limit, 0)})
		if cerr != nil {
			return
		}
		exec := &countingExecer{}
		eerr := o.Enqueue(context.Background(), exec, m)
		if (eerr == nil) != (Validate(o.cfg.MaxMessageBytes, m) == nil) {
			t.Fatalf("Enqueue error %v disagrees with Validate", eerr)
		}
		if eerr != nil && exec.calls != 0 {
			t.Fatalf("Enqueue failed with %v but executed %d statements", eerr, exec.calls)
		}
	})
}
