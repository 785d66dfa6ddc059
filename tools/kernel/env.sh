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
# kmemleak), each built in its own directory: sets KBUILD, KMAKE and
# KMAKE_FLAGS (its make variables and options, for another tree).
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
	KMAKE_FLAGS=("${cc[@]}" CLIPPY=1 KRUSTFLAGS=-Dwarnings -j"$JOBS")
	KMAKE=(make -s -C "$KSRC" O="$KBUILD" "${KMAKE_FLAGS[@]}")
}
# The config fragments of a flavour, applied in this order on top of
# tinyconfig: sets FRAG_PATHS.
flavour_fragments() {
	local frags
	case "$1" in
	test) frags=(test.config) ;;
	test-up) frags=(test.config up.config) ;;
	bench) frags=(test.config bench.config) ;;
	bench-builtin) frags=(test.config bench.config builtin.config) ;;
	bench-distro) frags=(test.config bench.config distro.config) ;;
	lever-*) frags=(test.config bench.config "$1.config") ;;
	soak) frags=(test.config soak.config) ;;
	*) die "unknown kernel flavour $1" ;;
	esac
	FRAG_PATHS=()
	for f in "${frags[@]}"; do FRAG_PATHS+=("$PROJ/tools/kernel/configs/$f"); done
}

# Writes BUILD/.config for the kernel source SRC: tinyconfig, the fragments
# FRAG_PATHS merged, olddefconfig. The rest of the arguments are the make
# command for SRC and BUILD (make -C SRC O=BUILD ...).
configure_kernel() {
	local src=$1 build=$2
	shift 2
	"$@" rustavailable >/dev/null || die "make rustavailable failed"
	"$@" tinyconfig >/dev/null
	(cd "$src" && scripts/kconfig/merge_config.sh -m -O "$build" "$build/.config" \
		"${FRAG_PATHS[@]}" >/dev/null)
	"$@" olddefconfig >/dev/null
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
