#!/usr/bin/env bash
# Packs the console as .NET 10 RID-specific tool packages (linux-x64, win-x64, osx-arm64: a pointer package and one per
# platform with its libtorch), installs the tool from that folder alone into a temp folder, and trains with it
# (fine-tuning one epoch, so libtorch is loaded). Usage: bash build/pack-tool.sh [output folder, default ./artifacts/tool]
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mkdir -p "${1:-artifacts/tool}" && cd "${1:-artifacts/tool}" && pwd)"
version="0.1.0-tool.$(date +%Y%m%d%H%M%S)"
time dotnet pack src/MlNetTransfer.Cli -c Release -p:ToolForAllPlatforms=true -p:Version="$version" -o "$out"
ls -l "$out"/MlNetTransfer.Cli*"$version".nupkg
work="$(mktemp -d)"
packages="$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')"
# The unique version's copies in the global packages folder (about 1 GB) go too.
trap 'rm -rf "$work" "$packages"/mlnettransfer.cli*/"$version"' EXIT
cat > "$work/nuget.config" <<XML
<configuration><packageSources><clear/><add key="local" value="$out" /></packageSources></configuration>
XML
dotnet tool install --tool-path "$work/tool" MlNetTransfer.Cli --version "$version" --configfile "$work/nuget.config"
"$work/tool/mlnet-transfer" train data/fashion-mnist-sample --mode fine-tune --unfreeze stage4 --epochs 1 --head-epochs 1 --out "$work/model.zip"
"$work/tool/mlnet-transfer" predict "$work/model.zip" data/fashion-mnist-sample/test/bag | tail -3
echo "the tool ($version) installed from $out alone and trained"
