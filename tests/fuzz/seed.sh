#!/bin/sh
# Fills the fuzzing corpora from the real Vapi samples and the fixtures, so that each run
# starts from well-formed messages (the corpora keep what earlier runs found).
# Usage: seed.sh OUT_DIR SAMPLES_DIR FIXTURES_DIR
set -eu
out=$1
samples=$2
fixtures=$3

mkdir -p "$out/corpus/vapi_msg" "$out/corpus/auth" "$out/corpus/httpframe"

# fuzz_httpframe: a piece-size byte, then requests as clients send them (pipelined too).
printf '\007POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}' \
	>"$out/corpus/httpframe/seed-length"
printf '\003POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n2;a=b\r\n{}\r\n0\r\nX-T: 1\r\n\r\n' \
	>"$out/corpus/httpframe/seed-chunked"
printf '\077GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' \
	>"$out/corpus/httpframe/seed-pipelined"
for f in "$samples"/*.json "$fixtures"/*.json "$fixtures"/malformed/*.body; do
	[ -f "$f" ] && cp "$f" "$out/corpus/vapi_msg/"
done

# fuzz_auth: a flags byte, seven header lines, the body (see tests/fuzz/fuzz_auth.c), so
# that each mode is the one that accepts in some seed. Flags (octal): 001 signs with sha256
# in hex; 053 with sha512 in upper-case hex, prefixed; 125 with sha1 in base64, behind the
# allow-list; 200 takes the network line as the allow-list.
for f in "$samples"/*.json "$fixtures"/status-update.ended.json; do
	[ -f "$f" ] || continue
	for flags in 001 053 125 200; do
		case $flags in
		001) creds='\n\n' ;;
		053) creds='wrong\nBasic dXNlcjpwYXNz\n' ;;
		125) creds='fuzz-secret\n\n' ;;
		*) creds='\nBearer fuzz-token-old\n' ;;
		esac
		{
			printf '%b' "\\0$flags"
			printf '%bsha256=00\n1700000000\n' "$creds"
			printf '203.0.113.5, 167.150.224.10\n10.0.0.1\n167.150.224.0/23, 2001:db8::/32\n'
			cat "$f"
		} >"$out/corpus/auth/seed-$flags-$(basename "$f")"
	done
done
