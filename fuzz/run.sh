#!/usr/bin/env bash
# Fuzzes one entry point of MlNetTransfer with AFL++ and SharpFuzz for a bounded time. Not part of CI.
#
#   fuzz/run.sh [image|manifest|modelzip]   # 600 s; the target defaults to image
#   FUZZ_SECONDS=3600 fuzz/run.sh manifest  # an hour
#
#   image     ImageDecoder.Decode (bytes -> DecodedImage)                 harness fuzz/ImageDecoderFuzz, seeds fuzz/corpus
#   manifest  ManifestReader.Read and ReadPaths (a .csv/.tsv manifest)    harness fuzz/ManifestFuzz,     seeds fuzz/corpus-manifest
#   modelzip  ModelZip.Inspect, ReadMetadataText, ReadOnnx, ModelMetadata.FromJson, ModelArchive.ReadMetadata
#                                                                         harness fuzz/ModelZipFuzz,     seeds fuzz/corpus-modelzip
#
# Idempotent: installs afl++ (apt-get) and the sharpfuzz tool (into fuzz/.tools) when missing, publishes the harness
# afresh into fuzz/out/<target>/bin (an uninstrumented copy in fuzz/out/<target>/plain), instruments MlNetTransfer.dll
# there, and starts a new AFL output folder fuzz/out/<target>/afl (the previous one is moved to afl.prev). Crash and
# hang inputs are copied to fuzz/findings/<target>/ and replayed through the uninstrumented harness. One afl-fuzz
# process: it uses one core. Two targets can run at the same time: their folders are separate, and the set-up steps
# (install, build) take turns on a lock (fuzz/out/.setup.lock).
#
# Settings (environment): FUZZ_SECONDS (600), FUZZ_TIMEOUT_MS (10000; per input, a fixed limit: generous because a
# .NET child restarted after a crash pays its start-up inside it; AFL's "+" suffix would instead auto-tune it down to
# a few ms), FUZZ_CORPUS (the target's seed folder).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzz=$root/fuzz
target=${1:-image}
case "$target" in
  image)
    harness=ImageDecoderFuzz; seeds=$fuzz/corpus; dict=$fuzz/image.dict
    # The decoder and the format sniffing it calls. Skia's codecs are native code: run, not instrumented.
    types=(MlNetTransfer.Data.ImageDecoder MlNetTransfer.Data.ImageFileCheck MlNetTransfer.Data.ImageHeader) ;;
  manifest)
    harness=ManifestFuzz; seeds=$fuzz/corpus-manifest; dict=$fuzz/manifest.dict
    # The reader, the file check it calls on every row, and the dataset it builds.
    types=(MlNetTransfer.Data.ManifestReader MlNetTransfer.Data.ImageFileCheck MlNetTransfer.Data.ImageDataset
           MlNetTransfer.Data.DatasetException MlNetTransfer.Data.LabeledImage MlNetTransfer.Data.SkippedFile) ;;
  modelzip)
    harness=ModelZipFuzz; seeds=$fuzz/corpus-modelzip; dict=$fuzz/modelzip.dict
    # The zip's structural check and the metadata reader. System.IO.Compression and System.Text.Json are not ours.
    types=(MlNetTransfer.Inference.ModelZip MlNetTransfer.Inference.ModelMetadata MlNetTransfer.Inference.ModelArchive) ;;
  *) echo "usage: fuzz/run.sh [image|manifest|modelzip]" >&2; exit 2 ;;
esac
seconds=${FUZZ_SECONDS:-600}
timeout_ms=${FUZZ_TIMEOUT_MS:-10000}
corpus=${FUZZ_CORPUS:-$seeds}
out=$fuzz/out/$target
findings=$fuzz/findings/$target
tools=$fuzz/.tools
sharpfuzz_version=2.3.0

say() { printf '\n== %s\n' "$*"; }

# Steps 1-3 take turns with another target's run.sh (the same tools, the same src/ build).
mkdir -p "$fuzz/out"
exec 9>"$fuzz/out/.setup.lock"
flock 9

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

# 3. Publish afresh (an instrumented MlNetTransfer.dll must never be reused or instrumented twice), keep an
#    uninstrumented copy for replaying findings, then instrument the code under test only, so that AFL's coverage map
#    measures its paths (the rest of MlNetTransfer.dll, training and ONNX, is left alone).
say "publishing $harness (Release)"
rm -rf "$out/bin" "$out/plain"
dotnet publish "$fuzz/$harness/$harness.csproj" -c Release -o "$out/bin" --nologo -v quiet
cp -r "$out/bin" "$out/plain"
say "instrumenting MlNetTransfer.dll: ${types[*]}"
"$tools/sharpfuzz" "$out/bin/MlNetTransfer.dll" "${types[@]}"
plain="$out/plain/$harness.dll" # the same build, not instrumented
flock -u 9; exec 9>&-

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
say "afl-fuzz $target for ${seconds}s: $(ls "$corpus" | wc -l) seeds, timeout ${timeout_ms} ms, log fuzz/out/$target/afl.log"
set +e
afl-fuzz -i "$corpus" -o "$out/afl" -x "$dict" -m none -t "$timeout_ms" -V "$seconds" \
  -- dotnet "$out/bin/$harness.dll" >"$out/afl.log" 2>&1
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
say "summary ($target)"
printf '  run time       %s s\n' "$(stat run_time)"
printf '  execs          %s (%s/s overall)\n' "$(stat execs_done)" "$(stat execs_per_sec)"
printf '  corpus         %s inputs (%s found by fuzzing)\n' "$(stat corpus_count)" "$(stat corpus_found)"
printf '  edges          %s (map coverage %s: managed code only)\n' "$(stat edges_found)" "$(stat bitmap_cvg)"
printf '  stability      %s\n' "$(stat stability)"
printf '  crashes        %s\n' "$crashes"
printf '  hangs          %s\n' "$hangs"

mkdir -p "$findings"
copied=0
for kind in crashes hangs; do
  for f in "$out/afl/default/$kind"/id:*; do
    [ -e "$f" ] || continue
    name="${kind%es}"; name="${name%s}-$(sha1sum "$f" | cut -c1-12)"
    cp "$f" "$findings/$name"
    echo "  $kind: fuzz/findings/$target/$name  ($(basename "$f"))"
    copied=$((copied + 1))
  done
done
if [ $copied -gt 0 ]; then
  say "replaying the findings (uninstrumented harness)"
  dotnet "$plain" --repro "$findings" || true
  exit 1
fi
echo "  no crash or hang inputs"
