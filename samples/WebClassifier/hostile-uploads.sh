#!/usr/bin/env bash
# Hostile uploads against the web sample, measured on the whole process: the server runs under /usr/bin/time -v and
# receives, all at once, a 74-byte PNG whose header claims 30000x30000, a JPEG whose SOF0 claims 20000x20000 and the
# same PNG as a raw body. Each should get 400 from its header within a second, and the server's maximum resident set
# stay far below what decoding them would take (GBs).
#
#   samples/WebClassifier/hostile-uploads.sh [model.zip]
#
# Without a model it trains one on data/fashion-mnist-sample with the CLI (about a minute). Needs dotnet, curl,
# python3 and GNU time (/usr/bin/time).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hostile-uploads.XXXXXX")
server_pid=
# /usr/bin/time passes no signal on: stop its child, the server (SIGTERM, as a service manager does), and let time
# report when it exits.
stop_server() {
    [[ -n $server_pid ]] || return 0
    local child
    child=$(pgrep -P "$server_pid" | head -1 || true)
    kill -TERM "${child:-$server_pid}" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT

echo "== build (Release)"
dotnet build "$repo/samples/WebClassifier" -c Release -v quiet -nologo | grep -E "error|Warn" || true
model=${1:-}
if [[ -z $model ]]; then
    model=$work/model.zip
    echo "== train a quick model: $model"
    dotnet build "$repo/src/MlNetTransfer.Cli" -c Release -v quiet -nologo | grep -E "error|Warn" || true
    dotnet "$repo/src/MlNetTransfer.Cli/bin/Release/net10.0/mlnet-transfer.dll" train "$repo/data/fashion-mnist-sample" --mode feature-extraction --out "$model" >"$work/train.log" 2>&1 \
        || { cat "$work/train.log"; exit 1; }
fi

echo "== craft the files"
python3 - "$work" <<'EOF'
import struct, sys, zlib
work = sys.argv[1]

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

# A valid IHDR claiming 30000x30000 8-bit RGB, then an IDAT of a few compressed bytes: 3.6 GB of pixels if decoded.
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
open(f"{work}/bomb-30000.png", "wb").write(png)

# A baseline JPEG: SOI, one quantisation table, SOF0 claiming 20000x20000 (one gray component), one Huffman table
# pair, SOS and a little entropy-coded data, EOI. 1.6 GB of pixels if decoded.
def seg(marker, data):
    return bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data
dqt = seg(0xDB, b"\x00" + bytes([1] * 64))
sof = seg(0xC0, struct.pack(">BHHB", 8, 20000, 20000, 1) + b"\x01\x11\x00")
# DC table 0: one code of length 1 for category 0; AC table 0: one code of length 1 for EOB.
dht = seg(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00") + seg(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
sos = seg(0xDA, b"\x01\x01\x00\x00\x3F\x00")
jpeg = b"\xFF\xD8" + dqt + sof + dht + sos + b"\x00" * 64 + b"\xFF\xD9"
open(f"{work}/bomb-20000.jpg", "wb").write(jpeg)
EOF
ls -l "$work"/bomb-*

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
echo "== start the server on $url under /usr/bin/time -v"
TMPDIR=$work ASPNETCORE_ENVIRONMENT=Production /usr/bin/time -v -o "$work/time.txt" \
    dotnet "$repo/samples/WebClassifier/bin/Release/net10.0/WebClassifier.dll" --model "$model" --urls "$url" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    curl -fs "$url/health" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.2
done
curl -fs "$url/health" >/dev/null || { echo "the server did not answer /health"; cat "$work/server.log"; exit 1; }

echo "== three hostile uploads at once"
send() { # name, curl arguments...
    local name=$1; shift
    curl -s -o "$work/$name.body" -w "%{http_code} %{time_total}\n" --max-time 60 "$@" "$url/api/predict" >"$work/$name.result" || true
}
senders=()
send png-form -F "image=@$work/bomb-30000.png;type=image/png" & senders+=($!)
send jpeg-form -F "image=@$work/bomb-20000.jpg;type=image/jpeg" & senders+=($!)
send png-raw -H "Content-Type: image/png" --data-binary "@$work/bomb-30000.png" & senders+=($!)
wait "${senders[@]}"
ok=1
for name in png-form jpeg-form png-raw; do
    read -r status seconds <"$work/$name.result"
    printf '%-10s HTTP %s  %6.3f s  %s\n' "$name" "$status" "$seconds" "$(cat "$work/$name.body" 2>/dev/null)"
    [[ $status == 400 ]] && awk "BEGIN { exit !($seconds < 1) }" || ok=0
done
echo "health after: $(curl -s --max-time 10 "$url/health")"

echo "== stop the server (SIGTERM)"
stop_server
grep -E "Maximum resident set size|Elapsed \(wall clock\)|Exit status" "$work/time.txt"
rss_kb=$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
(( rss_kb < 600 * 1024 )) || ok=0
if (( ok )); then echo "PASS: three 400s within 1 s each, server max RSS $((rss_kb / 1024)) MB (< 600 MB)"; else echo "FAIL"; exit 1; fi
