#!/usr/bin/env bash
# maxgrad as a library another project builds on: the README's first ```cpp block, compiled by a tiny
# out-of-tree project against maxgrad::maxgrad, and run.
#
# Usage: tests/package/run.sh install BUILD_DIR     cmake --install BUILD_DIR into a temporary prefix,
#                                                     then find_package(maxgrad CONFIG REQUIRED)
#        tests/package/run.sh subdirectory           add_subdirectory(<this clone>) (a Debug build of
#                                                     the libraries alone: the tests and programs of
#                                                     maxgrad must not be built then)
# Checks the program's output, that the installed headers sit under include/maxgrad only, and that
# none of maxgrad's own compile flags (-march=native, sanitizers) reach the consumer's compile line.
set -euo pipefail
mode=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$work/src"
awk '/^```cpp[ ]*$/ && !done { inb = 1; next } inb && /^```/ { inb = 0; done = 1; next } inb { print }' \
  "$root/README.md" >"$work/src/main.cpp"
[ -s "$work/src/main.cpp" ] || fail "README.md has no \`\`\`cpp block"
grep -q '#include <maxgrad/maxgrad.h>' "$work/src/main.cpp" || fail "README's first C++ block does not include <maxgrad/maxgrad.h>"

case "$mode" in
  install)
    build=$2
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    [ -f "$work/prefix/include/maxgrad/maxgrad.h" ] || fail "no include/maxgrad/maxgrad.h installed"
    others=$(ls "$work/prefix/include" | grep -vx maxgrad || true)
    [ -z "$others" ] || fail "headers installed outside include/maxgrad: $others"
    [ -f "$work/prefix/lib/cmake/maxgrad/maxgradConfigVersion.cmake" ] || fail "no maxgradConfigVersion.cmake"
    find_line='find_package(maxgrad 0.1 CONFIG REQUIRED)'
    extra=(-DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release)
    ;;
  subdirectory)
    find_line="add_subdirectory(\"$root\" maxgrad)
foreach(t test_tensor train_cifar maxgrad_cli)
  if(TARGET \${t})
    message(FATAL_ERROR \"add_subdirectory(maxgrad) defined \${t}: tests and programs are for the top-level build\")
  endif()
endforeach()"
    extra=(-DCMAKE_BUILD_TYPE=Debug)
    ;;
  *) fail "unknown mode '$mode' (install or subdirectory)" ;;
esac

cat >"$work/src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(readme_example LANGUAGES CXX)
$find_line
add_executable(readme_example main.cpp)
target_link_libraries(readme_example PRIVATE maxgrad::maxgrad)
CMAKE

cmake -S "$work/src" -B "$work/build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "${extra[@]}" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "configuring the consumer project failed"; }
cmake --build "$work/build" --target readme_example -j "$(nproc)" >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log"; fail "building the README's example failed"; }
line=$(grep -o '"command": "[^"]*main.cpp[^"]*"' "$work/build/compile_commands.json" || true)
[ -n "$line" ] || fail "no compile line for main.cpp"
for flag in -march=native -fsanitize -mprefer-vector-width; do
  case "$line" in *"$flag"*) fail "maxgrad's $flag reached the consumer's compile line: $line" ;; esac
done
out=$("$work/build/readme_example")
echo "$out"
grep -qx 'dy/dw = tensor(\[0.7864, 0.1413, 0.0001\])' <<<"$out" || fail "the example printed another gradient"
last=$(grep -o 'loss [0-9.e-]*' <<<"$out" | tail -1 | cut -d' ' -f2)
awk -v l="$last" 'BEGIN { exit !(l < 0.2) }' || fail "the example's MLP did not learn (last loss $last)"
echo "PASS ($mode)"
