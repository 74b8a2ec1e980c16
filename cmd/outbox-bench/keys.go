package main

import (
	"math/rand/v2"
	"strconv"
)

// Key distributions of --key-skew.
const (
	skewUniform = "uniform"
	skewZipf    = "zipf"
	// zipfS is the exponent of the zipf distribution: key-<k> is drawn with
	// a probability proportional to 1/(k+1)^zipfS.
	zipfS = 1.1
)

const keySkewHelp = `how messages spread over the --keys keys: uniform (every key equally
often: key-<i%keys>, at random in enqueue) or zipf (Zipf, s=1.1: key-<k> drawn with a probability
proportional to 1/(k+1)^1.1, from a fixed seed, so runs with the same
settings write the same keys). With --keys 1000 the hottest key, key-0,
gets 18% of the messages and the ten hottest 48%; with --keys 100, 23%
and 63%; with --keys 10, 37%`

// checkKeySkew checks --key-skew.
func checkKeySkew(skew string) error {
	if skew != skewUniform && skew != skewZipf {
		return flagErrorf("--key-skew", "must be %s or %s; got %q", skewUniform, skewZipf, skew)
	}
	return nil
}

// keyPicker chooses the key number (key-<k>) of each message of a load, in
// the order the load writes them.
type keyPicker struct {
	keys, next, step int
	zipf             *rand.Zipf // nil: uniform, round robin
}

// newKeyPicker returns the keys of skew over keys keys. Uniform goes round
// robin from start in steps of step (start, start+step, ... mod keys); zipf
// draws from a generator seeded with seed (start and step are not used).
func newKeyPicker(skew string, keys int, seed uint64, start, step int) *keyPicker {
	p := &keyPicker{keys: keys, next: start, step: step}
	if skew == skewZipf {
		p.zipf = rand.NewZipf(rand.New(rand.NewPCG(seed, 0x6b6579736b6577)), zipfS, 1, uint64(keys-1))
	}
	return p
}

// pick returns the key number of the next message.
func (p *keyPicker) pick() int {
	if p.zipf != nil {
		return int(p.zipf.Uint64())
	}
	k := p.next % p.keys
	p.next += p.step
	return k
}

// keyBytes returns the keys key-0 ... key-<n-1>.
func keyBytes(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	return keys
}
