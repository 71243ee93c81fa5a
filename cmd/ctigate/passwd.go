package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/ctigate/ctigate/access"
	"github.com/ctigate/ctigate/auth"
)

// runPasswd prints an argon2id hash of a password read from stdin (without
// echo on a terminal), or with --token a new bearer token, its digest and
// the identifier the custody ledger records it by.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	token := fs.Bool("token", false, "generate a bearer token instead: prints the token (give it to the client) and its token_sha256 (put it in config)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *token {
		tok, digest, err := auth.NewToken()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token:        %s\ntoken_sha256: %s\ntoken_id:     %s (how the custody ledger names it)\n", tok, digest, access.TokenID(digest))
		return nil
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	if len(pw) < 8 {
		return errors.New("passwd: password must have at least 8 characters")
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("passwd: the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
