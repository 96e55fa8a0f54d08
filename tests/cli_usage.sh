#!/bin/sh
# A bad command line is refused before any work: an unknown flag, a stray argument, a flag without its
# value, a number that is malformed or out of range, a value outside a flag's choices, a value given
# to a switch. Each must exit with status 2, print the reason and the usage text on stderr, print
# nothing on stdout and create no file. The flags come from the program's own --help, so a new flag
# is covered as soon as it exists.
#   cli_usage.sh PROGRAM        (CTest runs it for every program built from examples/)
set -u
prog=$1
case "$prog" in /*) ;; *) prog="$(pwd)/$prog" ;; esac  # the checks run in an empty folder of their own
name=$(basename "$prog")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/cwd"
cd "$tmp/cwd" || exit 1
failures=0
checks=0

fail() {
  echo "FAIL $name $1"
  failures=$((failures + 1))
}

# expect_usage REASON_TEXT ARGS...: exit 2, REASON_TEXT and "usage:" on stderr, empty stdout, no files.
expect_usage() {
  want=$1
  shift
  checks=$((checks + 1))
  timeout 60 "$prog" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  shown="$name $*"
  if [ "$rc" -ne 2 ]; then
    fail "[$*]: exit status $rc, expected 2 (stderr: $(head -c 300 "$tmp/err"))"
  elif ! grep -q -- "$want" "$tmp/err"; then
    fail "[$*]: stderr does not say '$want': $(head -c 300 "$tmp/err")"
  elif ! grep -q '^usage: ' "$tmp/err"; then
    fail "[$*]: no usage text on stderr"
  elif [ -s "$tmp/out" ]; then
    fail "[$*]: printed on stdout before refusing: $(head -c 200 "$tmp/out")"
  elif [ -n "$(ls -A "$tmp/cwd")" ]; then
    fail "[$*]: created files before refusing: $(ls -A "$tmp/cwd")"
    rm -rf "$tmp/cwd" && mkdir "$tmp/cwd"
  fi
  : "$shown"
}

timeout 60 "$prog" --help >"$tmp/help" 2>"$tmp/err" </dev/null
rc=$?
if [ "$rc" -ne 0 ] || ! grep -q '^usage: ' "$tmp/help"; then
  echo "FAIL $name --help: exit status $rc, or no 'usage:' line on stdout"
  exit 1
fi

expect_usage "unknown flag --no-such-flag" --no-such-flag
expect_usage "unknown flag --no-such-flag" --no-such-flag=3
expect_usage "unexpected argument 'stray'" stray

# Usage lines look like "  --name KIND   help": KIND is N (whole number), X (number), TEXT, a|b (choices),
# or absent for a switch.
grep -E '^  --[a-z0-9-]+' "$tmp/help" | sed -E 's/^  --([a-z0-9-]+)( ([^ ]+))?.*/\1 \3/' >"$tmp/flags"
while read -r flag kind; do
  case "$kind" in
    "")
      expect_usage "--$flag takes no value" "--$flag=1"
      ;;
    N)
      expect_usage "--$flag needs a value" "--$flag"
      expect_usage "is not a whole number" "--$flag" 12abc
      expect_usage "is not a whole number" "--$flag" 99999999999999999999
      expect_usage "is out of range" "--$flag" -9223372036854775808
      ;;
    X)
      expect_usage "--$flag needs a value" "--$flag"
      expect_usage "is not a finite number" "--$flag" nan
      expect_usage "is not a finite number" "--$flag" 1e999
      expect_usage "is out of range" "--$flag" -1e308
      ;;
    *"|"*)
      expect_usage "--$flag needs a value" "--$flag"
      expect_usage "is not one of" "--$flag" no-such-choice
      ;;
    *)
      expect_usage "--$flag needs a value" "--$flag"
      ;;
  esac
done <"$tmp/flags"

if [ "$failures" -ne 0 ]; then
  echo "$name: $failures of $checks bad command lines were not refused properly"
  exit 1
fi
echo "$name: all $checks bad command lines refused with exit status 2 and the usage text ($(wc -l <"$tmp/flags") flags)"
