# tokend: build, install on a host (or into DESTDIR for a package), check.
#
#   make                        build ./tokend
#   sudo make install           /usr/local/bin/tokend, the unit, the example config and drop-ins
#   make install DESTDIR=/tmp/pkg PREFIX=/usr   for packaging: nothing outside DESTDIR is touched
#   make check                  every check and test (./scripts/check)

GO         ?= go
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
# /usr/local/lib/systemd/system is on systemd's unit search path; packages use PREFIX=/usr.
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/tokend
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build install check clean

all: build

build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o tokend ./cmd/tokend

# The unit names /usr/local/bin/tokend; it is rewritten to $(BINDIR). The config is installed only as an
# example: an existing /etc/tokend/tokend.yaml is never overwritten.
install: build
	install -D -m 0755 tokend $(DESTDIR)$(BINDIR)/tokend
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/tokend|$(BINDIR)/tokend|g' systemd/tokend.service >$(DESTDIR)$(UNITDIR)/tokend.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tokend.service
	install -D -m 0644 configs/tokend.example.yaml $(DESTDIR)$(SYSCONFDIR)/tokend/tokend.example.yaml
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/credstore.encrypted
	install -d -m 0755 $(DESTDIR)$(DOCDIR)/examples
	install -m 0644 docs/operations.md $(DESTDIR)$(DOCDIR)/operations.md
	install -m 0644 systemd/examples/*.conf $(DESTDIR)$(DOCDIR)/examples/
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload; \
		echo "installed; next: docs/operations.md (config, credentials, then systemctl enable --now tokend)"; \
	fi

check:
	./scripts/check

clean:
	rm -f tokend
