#!/bin/sh
# CTest wrapper: runs shared/tools/check_step.py on one golden case, or exits 77 (CTest's skip code,
# see SKIP_RETURN_CODE in tests/CMakeLists.txt) saying why when python3, numpy or shared/ is missing.
#   check_step.sh SHARED_DIR STEP_DUMP CASE_DIR
shared=$1 bin=$2 case=$3
skip() { echo "skipped: $*"; exit 77; }
[ -f "$shared/tools/check_step.py" ] || skip "no $shared/tools/check_step.py (shared/ is not beside the project)"
[ -f "$case/args.txt" ] || skip "no golden case at $case"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is not installed"
/usr/bin/python3 -c "import numpy" 2>/dev/null || skip "numpy is missing (apt-get install python3-numpy)"
exec /usr/bin/python3 "$shared/tools/check_step.py" --bin "$bin" --case "$case"
