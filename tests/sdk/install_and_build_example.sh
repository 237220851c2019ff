#!/usr/bin/env bash
# Uses the SDK the way a third party does: installs oneadapt to a temporary prefix, builds
# plugins/example out of tree with find_package(OneAdapt) and oneadapt_add_plugin(), then loads
# the result with the host (the installed one and the build tree's).
# Usage: install_and_build_example.sh BUILD_DIR EXAMPLE_SOURCE_DIR
set -euo pipefail
build=$1 example=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/oneadapt/sdk.hpp"
test -f "$work/prefix/lib/cmake/OneAdapt/OneAdaptConfig.cmake"
test -x "$work/prefix/bin/oneadapt"

cmake -S "$example" -B "$work/example-build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example-build" -j 2 >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
plugin="$work/example-build/plugins/example_pattern.so"
test -f "$plugin"
echo "built $plugin out of tree"

# Only the entry point is exported.
exported=$(nm -D --defined-only "$plugin" | awk '$2 == "T" {print $3}' | grep -v '^_' || true)
echo "exported functions: $exported"
[ "$exported" = "oneadapt_plugin_entry" ]

# The installed host finds its installed plugins without flags ...
"$work/prefix/bin/oneadapt" plugins list | tee "$work/list.txt"
grep -Eq "example-pattern +modality .*$work/prefix/lib/oneadapt/plugins/example_pattern.so" "$work/list.txt"

# ... and the out-of-tree plugin, searched first, is the one that loads.
"$build/bin/oneadapt" --plugin-dir "$work/example-build/plugins" plugins inspect example-pattern \
  | tee "$work/inspect.txt"
grep -q "File.*$plugin" "$work/inspect.txt"
grep -q "values: 8\[\*\] 6 5 4 3" "$work/inspect.txt"
echo "PASS"
