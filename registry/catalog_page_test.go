package registry

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A first page of the catalog is complete only when the registry says
// nothing of a next one, in any spelling, and did not fill the page.
func TestCatalogPageCompleteness(t *testing.T) {
	for _, c := range []struct {
		name     string
		link     string
		repos    int
		complete bool
	}{
		{"no link", "", 2, true},
		{"quoted next", `</v2/_catalog?n=1000&last=b>; rel="next"`, 2, false},
		{"unquoted next", `</v2/_catalog?n=1000&last=b>; rel=next`, 2, false},
		{"a full page without a link", "", 1000, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v2/_catalog" {
					w.WriteHeader(http.StatusOK)
					return
				}
				if c.link != "" {
					w.Header().Set("Link", c.link)
				}
				names := make([]string, c.repos)
				for i := range names {
					names[i] = fmt.Sprintf("%q", fmt.Sprintf("r%d", i))
				}
				fmt.Fprintf(w, `{"repositories":[%s]}`, strings.Join(names, ","))
			}))
			defer srv.Close()
			cl := testConnect(t, strings.TrimPrefix(srv.URL, "http://"), Options{PlainHTTP: true})
			repos, complete, err := cl.CatalogPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(repos) != c.repos || complete != c.complete {
				t.Errorf("got %d repositories, complete %v; want %d, %v", len(repos), complete, c.repos, c.complete)
			}
		})
	}
}
