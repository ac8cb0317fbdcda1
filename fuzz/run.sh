#!/usr/bin/env bash
# Fuzzes ImageDecoder.Decode (bytes -> DecodedImage) with AFL++ and SharpFuzz for a bounded time. Not part of CI.
#
#   fuzz/run.sh                      # 600 s
#   FUZZ_SECONDS=3600 fuzz/run.sh    # an hour
#
# Idempotent: installs afl++ (apt-get) and the sharpfuzz tool (into fuzz/.tools) when missing, publishes the harness
# afresh into fuzz/out/bin, instruments MlNetTransfer.dll there, and starts a new AFL output folder fuzz/out/afl (the
# previous one is moved to fuzz/out/afl.prev). Crash and hang inputs are copied to fuzz/findings/ and replayed through
# the uninstrumented harness. One afl-fuzz process: it uses one core.
#
# Settings (environment): FUZZ_SECONDS (600), FUZZ_TIMEOUT_MS (10000; per input, a fixed limit: generous because a
# .NET child restarted after a crash pays its start-up inside it; AFL's "+" suffix would instead auto-tune it down to
# a few ms), FUZZ_CORPUS (fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzz=$root/fuzz
seconds=${FUZZ_SECONDS:-600}
timeout_ms=${FUZZ_TIMEOUT_MS:-10000}
corpus=${FUZZ_CORPUS:-$fuzz/corpus}
out=$fuzz/out
tools=$fuzz/.tools
sharpfuzz_version=2.3.0

say() { printf '\n== %s\n' "$*"; }

# 1. afl-fuzz (Debian's afl++ package).
if ! command -v afl-fuzz >/dev/null 2>&1; then
  say "installing afl++ (apt-get)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq afl++ >/dev/null
fi

# 2. The SharpFuzz instrumenter, as a local tool.
if [ ! -x "$tools/sharpfuzz" ] || ! dotnet tool list --tool-path "$tools" | grep -qi "sharpfuzz.commandline *$sharpfuzz_version"; then
  say "installing SharpFuzz.CommandLine $sharpfuzz_version into fuzz/.tools"
  dotnet tool uninstall SharpFuzz.CommandLine --tool-path "$tools" >/dev/null 2>&1 || true
  dotnet tool install SharpFuzz.CommandLine --tool-path "$tools" --version "$sharpfuzz_version" >/dev/null
fi

# 3. Publish afresh (an instrumented MlNetTransfer.dll must never be reused or instrumented twice), then instrument
#    the code under test: the decoder and the format sniffing it calls. The rest of MlNetTransfer.dll (training,
#    ONNX) is left alone so that AFL's coverage map measures the decoder's paths only. Skia's codecs are native code:
#    they are run but not instrumented (see fuzz/README.md).
say "publishing the harness (Release)"
rm -rf "$out/bin"
dotnet publish "$fuzz/ImageDecoderFuzz/ImageDecoderFuzz.csproj" -c Release -o "$out/bin" --nologo -v quiet
say "instrumenting MlNetTransfer.dll"
"$tools/sharpfuzz" "$out/bin/MlNetTransfer.dll" MlNetTransfer.Data.ImageDecoder MlNetTransfer.Data.ImageFileCheck MlNetTransfer.Data.ImageHeader
plain="$fuzz/ImageDecoderFuzz/bin/Release/net10.0/ImageDecoderFuzz.dll" # the same build, not instrumented

# 4. Seeds: the committed corpus, or generated when it is missing.
if [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
  say "generating the seed corpus into $corpus"
  dotnet "$plain" --make-corpus "$corpus"
fi

# 5. Fuzz.
if [ -d "$out/afl" ]; then rm -rf "$out/afl.prev"; mv "$out/afl" "$out/afl.prev"; fi
mkdir -p "$out"
export AFL_SKIP_BIN_CHECK=1                 # the target is `dotnet`, not an AFL-compiled binary
export AFL_NO_UI=1                          # a status line every minute instead of the curses screen
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 # a shared machine: no CPU governor checks, no core pinning
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FORKSRV_INIT_TMOUT=60000         # .NET start-up plus the first child, on a busy machine
export DOTNET_CLI_TELEMETRY_OPTOUT=1
say "afl-fuzz for ${seconds}s: $(ls "$corpus" | wc -l) seeds, timeout ${timeout_ms} ms, log fuzz/out/afl.log"
set +e
afl-fuzz -i "$corpus" -o "$out/afl" -x "$fuzz/image.dict" -m none -t "$timeout_ms" -V "$seconds" \
  -- dotnet "$out/bin/ImageDecoderFuzz.dll" >"$out/afl.log" 2>&1
status=$?
set -e
if [ $status -ne 0 ]; then
  tail -n 40 "$out/afl.log"
  echo "afl-fuzz exited with $status" >&2
  exit $status
fi

# 6. Summary and findings.
stats="$out/afl/default/fuzzer_stats"
stat() { awk -F': *' -v k="$1" '$1 ~ "^"k" *$" {print $2}' "$stats" | head -n1; }
crashes=$(stat saved_crashes); [ -n "$crashes" ] || crashes=$(stat unique_crashes)
hangs=$(stat saved_hangs); [ -n "$hangs" ] || hangs=$(stat unique_hangs)
say "summary"
printf '  run time       %s s\n' "$(stat run_time)"
printf '  execs          %s (%s/s overall)\n' "$(stat execs_done)" "$(stat execs_per_sec)"
printf '  corpus         %s inputs (%s found by fuzzing)\n' "$(stat corpus_count)" "$(stat corpus_found)"
printf '  edges          %s (map coverage %s: managed code only)\n' "$(stat edges_found)" "$(stat bitmap_cvg)"
printf '  stability      %s\n' "$(stat stability)"
printf '  crashes        %s\n' "$crashes"
printf '  hangs          %s\n' "$hangs"

mkdir -p "$fuzz/findings"
copied=0
for kind in crashes hangs; do
  for f in "$out/afl/default/$kind"/id:*; do
    [ -e "$f" ] || continue
    name="${kind%es}"; name="${name%s}-$(sha1sum "$f" | cut -c1-12)"
    cp "$f" "$fuzz/findings/$name"
    echo "  $kind: fuzz/findings/$name  ($(basename "$f"))"
    copied=$((copied + 1))
  done
done
if [ $copied -gt 0 ]; then
  say "replaying the findings (uninstrumented harness)"
  dotnet "$plain" --repro "$fuzz/findings" || true
  exit 1
fi
echo "  no crash or hang inputs"
