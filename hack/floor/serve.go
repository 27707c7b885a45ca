package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/crypto/bcrypt"
)

// serve runs a registry that takes a blob in a single POST with its digest,
// as Zot does and the Distribution registry does not: go-containerregistry's
// in-memory registry, over TLS, behind basic auth checked with bcrypt on
// every request, as both of those check an htpasswd file. The bench pushes
// into it beside the Distribution registry, to measure what a single-request
// upload is worth when each request costs a bcrypt check. It keeps blobs in
// memory and mounts nothing across repositories.
//
//	floor serve -addr HOST:PORT -cert FILE -key FILE -htpasswd FILE
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	cert := fs.String("cert", "", "TLS certificate (PEM)")
	key := fs.String("key", "", "TLS key (PEM)")
	htpw := fs.String("htpasswd", "", "htpasswd file of bcrypt hashes")
	fs.Parse(args)
	if *cert == "" || *key == "" || *htpw == "" {
		return fmt.Errorf("serve: -cert, -key and -htpasswd are required")
	}
	users, err := readHtpasswd(*htpw)
	if err != nil {
		return err
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		hash, known := users[user]
		if !ok || !known || bcrypt.CompareHashAndPassword(hash, []byte(pw)) != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="floor"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	})
	// HTTP/1.1 only, as the test bed's other registry serves ferry.
	srv := &http.Server{Addr: *addr, Handler: h, ErrorLog: log.New(io.Discard, "", 0),
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	return srv.ListenAndServeTLS(*cert, *key)
}

// readHtpasswd reads USER:BCRYPT lines.
func readHtpasswd(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		user, hash, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok {
			users[user] = []byte(hash)
		}
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no USER:HASH line", path)
	}
	return users, nil
}
