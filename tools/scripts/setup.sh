#!/bin/bash
# Install everything the project needs on a fresh Debian bookworm machine.
# Idempotent: re-running it only checks what is already there.
set -euo pipefail

log() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get is needed)"
command -v rustc >/dev/null || die "rustc not found: the machine's Rust toolchain is required"

RUSTC_VER=$(rustc --version | awk '{print $2}')

# The Debian mirror the machine already uses: reused for the extra suites so
# that no host name is hard-coded here.
mirror_uri() {
	local uri
	uri=$(grep -hoE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null |
	      awk '{print $2}' | grep -v security | head -n1 || true)
	if [ -z "$uri" ]; then
		uri=$(grep -hoE '^deb +[^ ]+' /etc/apt/sources.list 2>/dev/null |
		      awk '{print $2}' | head -n1 || true)
	fi
	[ -n "$uri" ] || die "cannot find the Debian mirror in /etc/apt"
	echo "$uri"
}

SRC=/etc/apt/sources.list.d/procmap-extra.sources
PREF=/etc/apt/preferences.d/procmap-extra
if [ ! -f "$SRC" ]; then
	log "adding pinned suites: bookworm-backports trixie trixie-backports"
	cat >"$SRC" <<EOT
Types: deb
URIs: $(mirror_uri)
Suites: bookworm-backports trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
	APT_UPDATED=
fi
# Nothing upgrades from the extra suites unless asked by name below.
cat >"$PREF" <<EOT
Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 50
EOT

need_pkgs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	echo "${missing[@]:-}"
}

apt_update_once() {
	if [ -z "${APT_UPDATED:-}" ]; then
		log "apt-get update"
		apt-get update -qq || die "apt-get update failed"
		APT_UPDATED=1
	fi
}

apt_install() { # suite pkgs...
	local suite=$1; shift
	local missing
	missing=$(need_pkgs "$@")
	[ -z "$missing" ] && return 0
	apt_update_once
	log "installing ($suite): $missing"
	# shellcheck disable=SC2086
	if [ "$suite" = default ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	else
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t "$suite" $missing >/dev/null
	fi || die "apt-get install $missing failed"
}

apt_install default clang-22 lld-22 llvm-22 libclang-22-dev busybox-static gcc-multilib btrfs-progs xfsprogs \
	bc bison flex libelf-dev libssl-dev cpio xz-utils zstd kmod rsync python3 perl
apt_install bookworm-backports qemu-system-x86
apt_install trixie-backports linux-source-7.3

# rust-src pinned to the installed rustc.
if [ ! -d "/usr/src/rustc-$RUSTC_VER/library" ]; then
	apt_update_once
	ver=$(apt-cache madison rust-src | awk -v v="$RUSTC_VER" '$3 ~ "^"v"\\+" || $3 ~ "^"v"-" {print $3; exit}')
	[ -n "$ver" ] || die "no rust-src package matches rustc $RUSTC_VER"
	log "installing rust-src=$ver"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "rust-src=$ver" >/dev/null ||
		die "apt-get install rust-src=$ver failed"
fi
[ -d "/usr/src/rustc-$RUSTC_VER/library" ] || die "rust-src for $RUSTC_VER missing"

# bindgen from crates.io.
BINDGEN_VER=0.72.1
export PATH="$HOME/.cargo/bin:$PATH"
if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VER"; then
	log "cargo install bindgen-cli $BINDGEN_VER"
	cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VER" || die "cargo install bindgen-cli failed"
fi

# The procmap crate's declared minimum Rust (rust-version), to test it with:
# Debian's rustc-web/cargo-web 1.85 (bookworm), unpacked into the cache rather
# than installed over the machine's Rust; the shared libraries they need are
# ordinary packages.
MSRV_PKG_VER=1.85.0+dfsg3-1~deb12u3
MSRV_DIR=${PROCMAP_CACHE:-$HOME/.cache/procmap-query}/rust-1.85
apt_install default libllvm19 libpcre3 libhttp-parser2.9 libcurl4 libsqlite3-0 libssh2-1
if [ ! -x "$MSRV_DIR/usr/bin/cargo" ]; then
	apt_update_once
	log "unpacking Rust 1.85 (rustc-web, cargo-web) into $MSRV_DIR"
	tmp=$(mktemp -d)
	chmod 755 "$tmp" # readable by apt's download user
	(cd "$tmp" && apt-get download -q "rustc-web=$MSRV_PKG_VER" "cargo-web=$MSRV_PKG_VER" \
		"libstd-rust-web-dev=$MSRV_PKG_VER" "libstd-rust-web-1.85=$MSRV_PKG_VER" >/dev/null) ||
		die "apt-get download of Rust $MSRV_PKG_VER failed"
	mkdir -p "$MSRV_DIR"
	for d in "$tmp"/*.deb; do dpkg -x "$d" "$MSRV_DIR"; done
	rm -rf "$tmp"
fi
LD_LIBRARY_PATH=$MSRV_DIR/usr/lib/x86_64-linux-gnu "$MSRV_DIR/usr/bin/cargo" --version >/dev/null ||
	die "Rust 1.85 in $MSRV_DIR does not run"

ls /usr/src/linux-source-7.3.tar.* >/dev/null 2>&1 || die "linux-source-7.3 tarball missing in /usr/src"
log "ok (rustc $RUSTC_VER, $(bindgen --version), $(ls /usr/src/linux-source-7.3.tar.*))"
