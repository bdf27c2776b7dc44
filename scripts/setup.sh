#!/usr/bin/env bash
# Installs what a fresh machine lacks, and nothing it already has:
#   - npm dependencies (npm ci from the lockfile);
#   - a Vulkan driver for Dawn, only when no WebGPU adapter is found (so a real GPU keeps its vendor driver):
#     Mesa lavapipe from Debian bookworm-backports (bookworm's own Mesa 22 is too old for Dawn);
#   - with --browser: Chromium (Debian package) for the browser tests;
#   - with --oracles: Debian's python3-nibabel, the fuzz test's NIfTI reference (test/fuzz.test.mjs runs it with
#     /usr/bin/python3);
#   - the brain T1 + atlas from Debian mricron-data (the 3-D example data and the ch2 test).
#   - Fashion-MNIST from Debian dataset-fashion-mnist (the robust-CLIP recipe and the readIdx test).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

want_browser=0
want_oracles=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --oracles) want_oracles=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --browser, --oracles)" >&2; exit 2 ;;
  esac
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup.sh: need root (or sudo) to run: $*" >&2; return 1
  fi
}

if [ ! -d node_modules/webgpu ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies"
  # onnxruntime-node (a bench peer) would download CUDA binaries in its install script and fail offline; its
  # bundled CPU and WebGPU providers need none of them
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
fi

if ! node scripts/probe-adapter.mjs 2>/dev/null; then
  if [ -r /etc/os-release ] && grep -q 'VERSION_CODENAME=bookworm' /etc/os-release; then
    echo "setup: no WebGPU adapter; installing Mesa lavapipe (Vulkan on the CPU) from bookworm-backports"
    src=/etc/apt/sources.list.d/bookworm-backports.sources
    if [ ! -f "$src" ]; then
      uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
      uri=${uri:-http://deb.debian.org/debian}
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
        | as_root tee "$src" >/dev/null
    fi
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1
  else
    echo "setup: no WebGPU adapter found. Install a Vulkan driver (a GPU vendor driver, or Mesa >= 24 with lavapipe)." >&2
    exit 1
  fi
  node scripts/probe-adapter.mjs
fi

if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Chromium for the browser tests"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi

if [ "$want_oracles" = 1 ] && ! /usr/bin/python3 -c 'import nibabel' >/dev/null 2>&1; then
  echo "setup: installing Debian's python3-nibabel (the fuzz test's NIfTI reference)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-nibabel
fi

# The real 3-D example data: the Colin27 brain T1 (ch2.nii.gz) and its AAL atlas labels, from Debian's mricron-data
if [ ! -r /usr/share/mricron/templates/ch2.nii.gz ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing mricron-data (brain T1 ch2.nii.gz + aal.nii.gz atlas, 16 MB)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mricron-data
  else
    echo "setup: /usr/share/mricron/templates/ch2.nii.gz is missing and apt-get is unavailable; the 3-D examples and the ch2 test need Debian's mricron-data" >&2
    exit 1
  fi
fi

# Fashion-MNIST (IDX .gz) for the robust-CLIP recipe and the readIdx test, from Debian's dataset-fashion-mnist
if [ ! -r /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing dataset-fashion-mnist (60k/10k 28x28 images, 30 MB)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dataset-fashion-mnist
  else
    echo "setup: /usr/share/datasets/fashion-mnist is missing and apt-get is unavailable; the robust-CLIP recipe and the readIdx test need Debian's dataset-fashion-mnist" >&2
    exit 1
  fi
fi
