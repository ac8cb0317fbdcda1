# Sourced by the figure scripts (`source "$(dirname "$0")/common.sh" "$@"`): the repository root as working folder,
# the output folder (the first argument, else a new temp folder) in $out, the shared photo sets in $data, and the
# pieces each script asks for.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
data=../shared/data

need_shared_data() {
  [ -d "$data" ] || { echo "error: $data is absent (the shared photo sets)" >&2; exit 1; }
}

# Debian's dataset-fashion-mnist, which data/make-fashion-mnist-sample.py reads.
need_fashion_mnist() {
  if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    echo "installing dataset-fashion-mnist (apt-get)"
    local sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo -n"
    # A fresh machine's package lists may predate the package: read them once and try again.
    $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
  fi
}

# Its own build of the console in $out/bin ($cli runs it): a figure run never shares binaries with a build under way in
# the work tree. Prints the machine.
build_cli() {
  dotnet build src/MlNetTransfer.Cli -c Release -v q -nologo -o "$out/bin" >/dev/null
  cli="dotnet $out/bin/mlnet-transfer.dll"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), vector extensions: $(grep -o 'avx512[a-z_]*\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "results in $out"
}

# Runs the console ($cli "$@") with a fresh cache of its own ($out/cache-<name>) under /usr/bin/time -v: the model goes
# to $out/<name>.zip, the output to $out/<name>.log; sets $wall (h:mm:ss) and $rss_mib (peak resident set).
timed_run() {
  local name=$1; shift
  export MLNETTRANSFER_CACHE="$out/cache-$name"
  rm -rf "$MLNETTRANSFER_CACHE"
  /usr/bin/time -v -o "$out/$name.time" $cli "$@" --out "$out/$name.zip" --no-color > "$out/$name.log" 2>&1
  wall=$(grep 'Elapsed (wall clock)' "$out/$name.time" | awk '{print $NF}')
  rss_mib=$(( $(grep 'Maximum resident' "$out/$name.time" | awk '{print $NF}') / 1024 ))
}
