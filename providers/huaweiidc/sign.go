package huaweiidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Huawei Cloud API Gateway AK/SK signing ("SDK-HMAC-SHA256"), written from the documented algorithm and pinned
// by testdata/sdk_sign_vectors.json, which the vendor's own Go SDK signer produced (see testdata/README.md).
//
// The signed headers follow the SDK's rule: every header set on the request when it is signed, except
// Content-Type, Authorization and names containing "_", plus Host. Headers the transport adds later
// (User-Agent, Accept-Encoding, Content-Length) are not on the request yet and so are not signed.

const (
	signAlgorithm = "SDK-HMAC-SHA256"
	sdkDateHeader = "X-Sdk-Date"
	sdkDateLayout = "20060102T150405Z"
	emptyBodySHA  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// signRequest sets X-Sdk-Date (from now) and Authorization on r, signing body (nil: empty) with sk.
// r.Host, when set, is the host that is signed; otherwise r.URL.Host.
func signRequest(r *http.Request, body []byte, ak, sk string, now time.Time) {
	r.Header.Del("Authorization")
	r.Header.Set(sdkDateHeader, now.UTC().Format(sdkDateLayout))
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	names, canonHeaders := canonicalHeaders(r.Header, host)
	cr := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL.Path),
		canonicalQuery(r.URL.Query()),
		canonHeaders,
		strings.Join(names, ";"),
		hexSHA256(body),
	}, "\n")
	sts := signAlgorithm + "\n" + r.Header.Get(sdkDateHeader) + "\n" + hexSHA256([]byte(cr))
	mac := hmac.New(sha256.New, []byte(sk))
	mac.Write([]byte(sts))
	r.Header.Set("Authorization", signAlgorithm+" Access="+ak+", SignedHeaders="+strings.Join(names, ";")+
		", Signature="+hex.EncodeToString(mac.Sum(nil)))
}

// canonicalHeaders returns the sorted lowercase names of the headers to sign and their canonical block
// ("name:value\n" per value, values sorted and trimmed).
func canonicalHeaders(h http.Header, host string) ([]string, string) {
	vals := map[string][]string{"host": {host}}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if lk == "content-type" || lk == "authorization" || lk == "host" || strings.Contains(lk, "_") {
			continue
		}
		vals[lk] = append(vals[lk], vs...)
	}
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		vs := append([]string(nil), vals[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			b.WriteString(k + ":" + strings.TrimSpace(v) + "\n")
		}
	}
	return names, b.String()
}

// canonicalURI escapes each segment of the (decoded) path and makes it end in "/"; only the signed form
// gets the slash, the request path is not changed.
func canonicalURI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = signEscape(s)
	}
	p := strings.Join(segs, "/")
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// canonicalQuery sorts keys and, per key, values; both are escaped.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, signEscape(k)+"="+signEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

// signEscape percent-encodes every byte except A-Z a-z 0-9 - _ . ~ (upper-case hex).
func signEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func hexSHA256(b []byte) string {
	if len(b) == 0 {
		return emptyBodySHA
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
