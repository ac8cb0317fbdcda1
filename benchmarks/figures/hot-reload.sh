#!/usr/bin/env bash
# The web sample under load while its model file is replaced twice (A -> B -> A, each a temp file renamed over it):
# 8 clients of real-photo uploads (hymenoptera val) for 30 s (HOT_RELOAD_SECONDS). Prints requests, failures,
# latency, how soon the new model answered, the served generation, the server's RSS and temp files; then the same
# with ImageClassifierOptions.ReturnMemoryAfterReload off, for the RSS comparison.
# Needs ../shared/data. Usage: bash benchmarks/figures/hot-reload.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
for return_memory in true false; do
echo "== ReturnMemoryAfterReload $return_memory"
HOT_RELOAD_RETURN_MEMORY="$return_memory" HOT_RELOAD_SECONDS="${1:-30}" dotnet test tests/MlNetTransfer.Tests -c Release \
  --filter "FullyQualifiedName~HotReloadLoadTests" --logger "console;verbosity=detailed" 2>&1 |
  grep -E "requests in|replaced at|served generation|server RSS|server temp|Passed!|Failed!|Error Message" -A0 | sed 's/^\[xUnit[^]]*\] *//' | sort -u
done
