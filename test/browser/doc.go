// Package browser holds the end-to-end test of the status page in a real browser: the tokend binary
// against vendor fakes and a real Redis, the page opened in headless Chromium.
package browser
