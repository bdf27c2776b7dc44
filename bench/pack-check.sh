#!/usr/bin/env bash
# What a web project gets from `npm install voxgrad`, checked offline: packs a fresh clone of this repository's HEAD
# (prepack builds dist/ and dist/types), packs voxgrad's runtime dependencies from the local node_modules, installs the
# tarballs into an empty project with --offline, then shows that the types are there, that Dawn (`webgpu`) was not
# installed, what Node says without it, and the bundle sizes of that installed copy (bench/bundle-size.mjs).
#   bash bench/pack-check.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
ln -s "$repo/node_modules" "$work/clone/node_modules"
(cd "$work/clone" && npm pack --silent --pack-destination "$work" >/dev/null)
for dep in nifti-reader-js fflate; do (cd "$work" && npm pack --silent --ignore-scripts "$repo/node_modules/$dep" >/dev/null); done
mkdir "$work/app"
cd "$work/app"
echo '{ "name": "app", "private": true, "type": "module" }' > package.json
npm install --offline --no-audit --no-fund --silent "$work"/fflate-*.tgz "$work"/nifti-reader-js-*.tgz "$work"/voxgrad-*.tgz
echo "tarball: $(tar tzf "$work"/voxgrad-*.tgz | wc -l) files, $(tar tzf "$work"/voxgrad-*.tgz | grep -c '^package/dist/types/.*\.d\.ts$') in dist/types"
echo "installed packages: $(ls node_modules | tr '\n' ' ')"
if [ -e node_modules/webgpu ]; then echo 'FAIL: webgpu (Dawn) was installed'; exit 1; fi
echo 'webgpu (Dawn) not installed'
node --input-type=module -e "import * as vg from 'voxgrad'; await vg.init().then(() => console.log('Node init: ok'), (e) => console.log('Node init without webgpu:', e.message));"
node "$repo/bench/bundle-size.mjs" "$work/app/node_modules/voxgrad"
