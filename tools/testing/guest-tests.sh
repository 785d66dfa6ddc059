#!/bin/sh
# Runs inside the test VM (tools/vm/run): every test program, 64-bit and
# 32-bit, with its TAP output, then upstream's PROCMAP_QUERY tests with the
# Rust module loaded. The host counts the "# Totals:" lines.
#
#   sh guest-tests.sh [counted|unknown]
#
# The argument is the generation the kernel must report: counted (the
# default), or PROCMAP_GENERATION_UNKNOWN on a kernel without per-VMA locks.
export PROCMAP_EXPECT_GENERATION="${1:-counted}"
# With per-VMA locks, a test makes the test kernel's VMA lookups fail
# (fail_function): it must not skip there.
[ "$PROCMAP_EXPECT_GENERATION" = counted ] && export PROCMAP_REQUIRE_INJECTION=1
echo "guest: $(uname -r), $(nproc) CPUs, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
rc=0
for bits in 64 32; do
	for t in procmap-query-contract procmap-query-diff procmap-query-batch procmap-query-unload procmap-query-fuzz; do
		echo "=== $t ($bits-bit)"
		if [ -x "./$bits/$t" ]; then
			"./$bits/$t" || rc=1
			# A test killed while it made VMA lookups fail leaves them failing.
			fi=/sys/kernel/debug/fail_function
			if [ -e "$fi/inject" ] && [ -n "$(cat "$fi/inject")" ]; then
				echo "# $t left fail_function on: $(tr '\n' ' ' <"$fi/inject")"
				echo 0 >"$fi/probability"
				echo >"$fi/inject"
				rc=1
			fi
		else
			echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
			rc=1
		fi
	done
done

# The documentation's C example, as a user copies it: run on a sleeping
# process, it must print that process's readable or executable file mappings
# as the maps text shows them, then "unchanged" (only if the kernel counts
# the generation: with PROCMAP_GENERATION_UNKNOWN nothing is a snapshot).
for bits in 64 32; do
	echo "=== documentation example ($bits-bit)"
	sleep 1000 &
	spid=$!
	# Once it has exec'd: its maps no longer change.
	m1=a m2=b
	while [ "$m1" != "$m2" ]; do
		m1=$(cat "/proc/$spid/maps")
		sleep 1
		m2=$(cat "/proc/$spid/maps")
	done
	out=$("./$bits/procmap-query-doc-example" "$spid")
	want=$(awk '$5 != 0 && $2 ~ /[rx]/ {
			n = $6; for (i = 7; i <= NF; i++) n = n " " $i; print $1, n
		}' "/proc/$spid/maps" | sed 's/^0*//; s/-0*/-/')
	kill "$spid"
	got=$(echo "$out" | grep -v '^unchanged$')
	if echo "$out" | grep -qx unchanged; then said=counted; else said=unknown; fi
	if [ -n "$want" ] && [ "$got" = "$want" ] && [ "$said" = "$PROCMAP_EXPECT_GENERATION" ]; then
		echo "ok 1 documentation example lists $(echo "$want" | wc -l) mappings, generation $said"
		echo "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"
	else
		echo "not ok 1 documentation example"
		printf '# printed:\n%s\n# maps text:\n%s\n' "$out" "$want"
		echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
		rc=1
	fi
done

# The userspace crate's tests, against the Rust module.
echo "=== procmap crate tests (procmap_query loaded: $([ -d /sys/module/procmap_query ] && echo 1 || echo 0))"
PROCMAP_REQUIRE_IOCTL=1 PROCMAP_REQUIRE_BATCH=1 ./64/procmap-host-tests --test-threads=2 || rc=1
echo "=== procmap CLI tests"
PROCMAP_BIN=./64/procmap PROCMAP_REQUIRE_IOCTL=1 PROCMAP_REQUIRE_BATCH=1 \
	./64/procmap-cli-tests --test-threads=2 || rc=1

# Upstream tests: the Rust module must be the one answering.
if [ -d /sys/module/procmap_query ]; then loaded=1; else loaded=0; fi
echo "=== upstream proc-pid-vm (procmap_query loaded: $loaded)"
if [ "$loaded" = 1 ] && ./64/upstream-proc-pid-vm; then
	echo "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"
else
	echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
	rc=1
fi
echo "=== upstream proc-maps-race (procmap_query loaded: $loaded)"
[ "$loaded" = 1 ] || rc=1
./64/upstream-proc-maps-race || rc=1
exit $rc
