package cli

import "flag"

// suggest returns the flag of fs closest to name ("--shards" for
// "shard"), or "" when none is close (see Closest).
func suggest(fs *flag.FlagSet, name string) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if best := Closest(name, names); best != "" {
		return "--" + best
	}
	return ""
}

// Closest returns the candidate closest to name, for a "did you mean":
// within a third of name's length in edit distance (at least 1, at most
// 3), else "".
func Closest(name string, candidates []string) string {
	best, bestD := "", min(3, max(1, len(name)/3))+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b
// (Levenshtein plus the swap of two neighbours, the commonest typo), in
// bytes: flag names are ASCII.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
