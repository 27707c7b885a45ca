// Package manifest holds ferry's data types and nothing that does I/O: the bill
// of materials that heads every archive, and the media types and names the
// other packages agree on. It imports no other ferry package.
package manifest
