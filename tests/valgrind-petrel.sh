#!/bin/sh
# Run the broker under Valgrind memcheck; for PETREL_BIN, so that the integration suite checks
# every broker it starts for leaks and memory errors at shutdown:
#
#   PETREL_BIN=$PWD/tests/valgrind-petrel.sh PETREL_SANITIZED=1 \
#     /usr/bin/python3 -m pytest -n 2 tests/integration/test_connect.py ...
#
# The broker is build/petrel (a plain build; Valgrind and AddressSanitizer do not mix), or
# PETREL_VALGRIND_BIN. Any leak (definite, indirect or possible) or memory error makes the
# broker exit with status 99, which the suite reports as a crash with Valgrind's report from
# the broker's stderr. Memcheck is some 20-50 times slower: PETREL_SANITIZED=1 triples the
# suite's timeouts.
here=$(cd "$(dirname "$0")/.." && pwd)
exec valgrind --quiet --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=99 --track-fds=no \
    "${PETREL_VALGRIND_BIN:-$here/build/petrel}" "$@"
