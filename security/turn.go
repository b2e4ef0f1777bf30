package security

import "strings"

// LoadTURNCredentials reads a TURN server's long-term credentials from
// path: the first line that is neither empty nor a comment (#), of the
// form "username:password" (the password may contain ':'). The file must
// be readable by its owner only, as a key file. Errors never include the
// password.
func LoadTURNCredentials(path string) (username, password string, err error) {
	data, err := readPrivateFile(path, "TURN credentials file")
	if err != nil {
		return "", "", err
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, p, ok := strings.Cut(line, ":")
		if !ok || u == "" || p == "" {
			return "", "", &ParseError{What: "TURN credentials", Path: path, Line: i + 1,
				Reason: "expected username:password, both non-empty"}
		}
		return u, p, nil
	}
	return "", "", &ParseError{What: "TURN credentials", Path: path,
		Reason: "no credentials found: expected a line username:password; lines starting with # are comments"}
}
