//go:build !unix

package pgtest

import "errors"

func localServer() (string, error) {
	return "", errors.New("the local initdb provider needs a Unix system")
}
