#!/bin/sh
# Runs inside the test VM (tools/vm/run): every test program, 64-bit and
# 32-bit, with its TAP output. The host counts the results.
echo "guest: $(uname -r), $(nproc) CPUs, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
rc=0
for bits in 64 32; do
	for t in procmap-query-contract procmap-query-diff procmap-query-unload; do
		[ -x "./$bits/$t" ] || continue
		echo "=== $t ($bits-bit)"
		"./$bits/$t" || rc=1
	done
done
exit $rc
