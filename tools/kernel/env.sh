# Common settings for the kernel scripts; sourced, not run.
# shellcheck shell=bash
PROJ=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${PROCMAP_CACHE:-$HOME/.cache/procmap-query}
KSRC=$CACHE/linux
KVER_SERIES=7.3
RUSTC_VER=$(rustc --version | awk '{print $2}')
export PATH="$HOME/.cargo/bin:$PATH"
export RUST_LIB_SRC=/usr/src/rustc-$RUSTC_VER/library
JOBS=${JOBS:-$(nproc)}

# Selects the kernel config flavour (test; test-up: the test config on one CPU,
# without per-VMA locks; bench: the test config without debug
# options; bench-builtin: bench with the Rust handler built in; lever-*: bench
# with one optimisation undone; bench-distro: bench with a distribution's
# hardening and mitigations, built with GCC; soak: test plus fault injection and
# kmemleak), each built in its own directory: sets KBUILD
# and KMAKE.
use_flavour() {
	case "$1" in
	test) KBUILD=$CACHE/build ;;
	test-up) KBUILD=$CACHE/build-test-up ;;
	bench) KBUILD=$CACHE/build-bench ;;
	bench-builtin) KBUILD=$CACHE/build-bench-builtin ;;
	lever-os | lever-no-inline-helpers | soak | bench-distro) KBUILD=$CACHE/build-$1 ;;
	*) die "unknown kernel flavour $1" ;;
	esac
	# Rust is always built through clippy, and any Rust or clippy warning fails the build.
	# bench-distro is built with GCC, as Debian builds its kernels; the others with clang.
	local cc=(LLVM=-22)
	[ "$1" = bench-distro ] && cc=(CC=gcc HOSTCC=gcc)
	KMAKE=(make -s -C "$KSRC" O="$KBUILD" "${cc[@]}" CLIPPY=1 KRUSTFLAGS=-Dwarnings -j"$JOBS")
}
# Fixed identity and dates: the same series always gives the same commits.
export GIT_AUTHOR_NAME="procmap-query project" GIT_AUTHOR_EMAIL="procmap-query@localhost"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2026-11-23T00:00:00Z" GIT_COMMITTER_DATE="2026-11-23T00:00:00Z"

die() { echo "${0##*/}: error: $*" >&2; exit 1; }
log() { echo "${0##*/}: $*" >&2; }

# Where a project file lives in the kernel tree.
kpath() {
	case "$1" in
	Kbuild | Kconfig) echo "fs/proc/procmap_query/$1" ;;
	rust/procmap_query/*) echo "fs/proc/procmap_query/${1#rust/procmap_query/}" ;;
	*) echo "$1" ;;
	esac
}

use_flavour test
