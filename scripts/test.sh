#!/usr/bin/env bash
# The test command (npm test, .ci/run): setup, build, typecheck, the layer check (no import cycles, no upward
# imports), the op tests on the real WebGPU adapter in Node, then a subset in headless Chromium. Ends with one
# "N passed, M failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
bash scripts/setup.sh --browser --oracles
npm run build
npm run typecheck
npm run lint:layers
node scripts/run-tests.mjs "$@"
