package convert

// itemData returns the exact bytes of the value of the top-level "data" key of item, a JSON
// object that protojson has already decoded (so valid JSON with valid UTF-8, and no field given
// twice). It returns nil whenever it cannot tell for certain: a key before "data" or "data"
// itself written with escapes (protojson would read "d\u0061ta" as data), a data that is null or
// not an object, or bytes that are not what it expects. The caller then falls back to the
// item's Struct, so nil never changes what is stored. It allocates nothing.
func itemData(item []byte) []byte {
	i := skipSpace(item, 0)
	if i >= len(item) || item[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipSpace(item, i)
		if i >= len(item) || item[i] != '"' {
			return nil // "}" (no data) or unexpected
		}
		end, escaped := skipString(item, i)
		if end < 0 || escaped {
			return nil
		}
		key := item[i+1 : end-1]
		i = skipSpace(item, end)
		if i >= len(item) || item[i] != ':' {
			return nil
		}
		i = skipSpace(item, i+1)
		vend := skipValue(item, i)
		if vend < 0 {
			return nil
		}
		if string(key) == "data" {
			if item[i] != '{' {
				return nil
			}
			return item[i:vend:vend]
		}
		i = skipSpace(item, vend)
		if i >= len(item) || item[i] != ',' {
			return nil
		}
		i++
	}
}

// skipSpace returns the index of the first byte of b at or after i that is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just after the JSON string starting at b[i] (a '"'), and whether
// it holds escapes; -1 when it does not end.
func skipString(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// skipValue returns the index just after the JSON value starting at b[i]; -1 when it does not
// end.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := skipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}
