#!/usr/bin/env bash
# Runs the commands of a document in docs/ exactly as printed, and checks what they print.
#
# Usage: tests/teaching/run_doc.sh docs/NAME.md      (from anywhere; commands run from the clone's root)
#
# The rules a document follows (so that it cannot rot):
#   - every ```sh block is run, in order, as one bash script (set -e) from the root of the clone;
#   - a ```text block that follows an ```sh block (only blank lines between) is what that block
#     prints, stdout and stderr together; it must match line by line, where a line "..." stands for
#     any number of lines and "..." inside a line for any text (paths, addresses that differ between
#     machines);
#   - a line <!-- needs: gdb ../shared/golden --> before a block skips that block, with a message,
#     when one of those programs (or, for anything with a slash, paths) is missing;
#   - the pictures in docs/img must be exactly what the commands draw: they are snapshotted before,
#     compared after, and restored (the test then fails) if a command drew something else.
# Exit status: 0 all blocks passed or were skipped, 1 a block failed or printed something else.
set -uo pipefail

doc=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Split the document into blocks: N.sh (commands), N.expected (output), N.needs.
awk -v dir="$work" '
  infence == 0 && /^<!-- needs:/ { pending = $0; sub(/^<!-- needs:[ ]*/, "", pending); sub(/[ ]*-->.*$/, "", pending); next }
  infence == 0 && /^```sh[ ]*$/ {
    n++; infence = 1; file = dir "/" n ".sh"; printf "" > file; last = "sh"
    if (pending != "") { print pending > (dir "/" n ".needs"); close(dir "/" n ".needs"); pending = "" }
    next
  }
  infence == 0 && /^```text[ ]*$/ && last == "sh" { infence = 1; file = dir "/" n ".expected"; printf "" > file; last = ""; next }
  infence == 0 && /^```/ { infence = 2; last = ""; next }
  infence != 0 && /^```[ ]*$/ { if (infence == 1) close(file); infence = 0; next }
  infence == 1 { print > file; next }
  infence == 2 { next }
  /^[ \t]*$/ { next }
  { last = "" }
' "$doc"

# 2. The matcher (tests/teaching/match_output.sh): expected against actual, "..." as above.
. "$root/tests/teaching/match_output.sh"

missing_need() {
  local need
  for need in $1; do
    if [[ $need == */* ]]; then
      [ -e "$need" ] || { echo "$need"; return; }
    else
      command -v "$need" >/dev/null 2>&1 || { echo "$need"; return; }
    fi
  done
}

# 3. Snapshot the pictures, run the blocks, compare.
mkdir -p "$work/img"
[ -d docs/img ] && cp -p docs/img/* "$work/img/" 2>/dev/null
status=0
name=$(basename "$doc")
for ((n = 1; ; n++)); do
  script="$work/$n.sh"
  [ -f "$script" ] || break
  first=$(grep -v '^[[:space:]]*\(#.*\)\?$' "$script" | head -1)
  if [ -f "$work/$n.needs" ]; then
    miss=$(missing_need "$(cat "$work/$n.needs")")
    if [ -n "$miss" ]; then
      echo "SKIP $name block $n ($first ...): needs $miss, which is not here"
      continue
    fi
  fi
  echo "RUN  $name block $n: $first"
  bash -e "$script" >"$work/$n.out" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL $name block $n exited with status $rc; its commands:"
    sed 's/^/    /' "$script"
    echo "  and output:"
    tail -40 "$work/$n.out" | sed 's/^/    /'
    status=1
    continue
  fi
  if [ -f "$work/$n.expected" ] && ! match_output "$work/$n.expected" "$work/$n.out"; then
    echo "FAIL $name block $n printed something other than the document shows (diff: document -> actual):"
    diff -u "$work/$n.expected" "$work/$n.out" | tail -n +3 | sed 's/^/    /'
    status=1
  fi
done

if [ -d docs/img ]; then
  for f in docs/img/*; do
    [ -f "$f" ] || continue
    b=$(basename "$f")
    if [ -f "$work/img/$b" ] && ! cmp -s "$f" "$work/img/$b"; then
      echo "FAIL $f is not what the commands of $name draw now: regenerate it with them and commit it"
      echo "     (the committed version has been put back)"
      cp -p "$work/img/$b" "$f"
      status=1
    fi
  done
fi
[ $status -eq 0 ] && echo "PASS $name"
exit $status
