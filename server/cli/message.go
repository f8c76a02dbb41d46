package cli

import (
	"regexp"
	"strings"
	"unicode"
)

// rpcPrefix is how grpc-go writes a status as an error: "rpc error: code = NotFound desc = ".
var rpcPrefix = regexp.MustCompile(`rpc error: code = ([A-Za-z]+) desc = `)

// Message is err as the one line a person reads after "hookstream: ": a gRPC status as its
// code in words and its message ("not found: no such consumer group"), and the lines of a
// joined error joined with "; ".
func Message(err error) string {
	msg := rpcPrefix.ReplaceAllStringFunc(err.Error(), func(m string) string {
		return words(rpcPrefix.FindStringSubmatch(m)[1]) + ": "
	})
	return strings.ReplaceAll(msg, "\n", "; ")
}

// words writes a CamelCase code name in lower-case words: "DeadlineExceeded" is
// "deadline exceeded".
func words(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte(' ')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
