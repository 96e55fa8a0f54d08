#!/usr/bin/env bash
# Checks every ```cpp block of the given documents against the source it quotes, so that a quote
# cannot go stale when the code changes.
#
# Usage: tests/teaching/check_quotes.sh docs/*.md     (from anywhere; paths are from the clone's root)
#
# Each ```cpp block is preceded (blank lines allowed) by one of:
#   <!-- quote: core/ops/arith.cpp -->          the block's lines appear in that file, in a row
#   <!-- quote: core/ops/arith.cpp excerpt -->  ... in that order, a line "// ..." standing for any
#                                               number of lines left out
#   <!-- not a quote -->                        an example of the reader's own code, not checked
# A block inside a list item may be indented; the fence's indentation is taken off its lines. A
# ```cpp block without one of these markers is an error too.
# Exit status: 0 every quote matches, 1 otherwise.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/teaching/match_output.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
for doc in "$@"; do
  doc=$(realpath "$doc")
  name=${doc#"$root"/}
  rm -f "$work"/q.*
  # q.N.cpp: the block (indentation of its fence removed); q.N.marker: "quote FILE [excerpt]",
  # "none" or "missing"; q.N.line: its line in the document.
  awk -v dir="$work" '
    !infence && /^<!-- quote:/ { m = $0; sub(/^<!-- quote:[ ]*/, "", m); sub(/[ ]*-->.*$/, "", m); marker = "quote " m; next }
    !infence && /^<!-- not a quote -->/ { marker = "none"; next }
    !infence && /^[ ]*```cpp[ ]*$/ {
      n++; infence = 1; indent = match($0, /[^ ]/) - 1
      print (marker == "" ? "missing" : marker) > (dir "/q." n ".marker"); close(dir "/q." n ".marker")
      print NR > (dir "/q." n ".line"); close(dir "/q." n ".line")
      file = dir "/q." n ".cpp"; printf "" > file; marker = ""; next
    }
    infence && /^[ ]*```[ ]*$/ { infence = 0; close(file); next }
    infence { print substr($0, 1, indent) ~ /^[ ]*$/ ? substr($0, indent + 1) : $0 > file; next }
    /^[ \t]*$/ { next }
    { marker = "" }
  ' "$doc"
  for m in "$work"/q.*.marker; do
    [ -f "$m" ] || continue
    q=${m%.marker}
    line=$(cat "$q.line")
    read -r kind src mode <"$m"
    case "$kind" in
      none) continue ;;
      missing)
        echo "FAIL $name:$line: a \`\`\`cpp block without <!-- quote: FILE --> or <!-- not a quote --> before it"
        status=1
        continue
        ;;
    esac
    if [ ! -f "$root/$src" ]; then
      echo "FAIL $name:$line: quotes $src, which does not exist"
      status=1
      continue
    fi
    { echo "..."; if [ "${mode:-}" = excerpt ]; then sed 's|^[[:space:]]*// \.\.\.[[:space:]]*$|...|' "$q.cpp"; else cat "$q.cpp"; fi; echo "..."; } >"$q.pattern"
    if match_output "$q.pattern" "$root/$src"; then
      echo "OK   $name:$line quotes $src${mode:+ ($mode)}"
    else
      echo "FAIL $name:$line: this block is not what $src says${mode:+ (as an excerpt)}; the block:"
      sed 's/^/    /' "$q.cpp"
      status=1
    fi
  done
done
exit $status
