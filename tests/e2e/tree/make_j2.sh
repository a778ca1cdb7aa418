#!/usr/bin/env bash
# e2e process tree (runs in the test harness): `make -j2` building a small C project (make, the
# shells it starts, gcc's driver, cc1, as and ld come and go: vfork, fork and exec all the time).
# Checkpointed with --kill mid-way, restored, the build must finish with binaries identical to
# those of an uninterrupted build of the same tree.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup
command -v make >/dev/null && command -v gcc >/dev/null ||
  { e2e_log "SKIP: make or gcc is not installed"; exit 77; }

# A project of 40 files, each with enough work for the optimizer to take a while.
make_project() {
  local dir=$1 i
  mkdir -p "$dir"
  for ((i = 0; i < 40; i++)); do
    {
      echo "unsigned long f$i(unsigned long x) {"
      echo "  unsigned long a[64] = {0};"
      echo "  for (int k = 0; k < 64; ++k) a[k] = x * $((i + 3)) + k;"
      local j
      for ((j = 0; j < 30; j++)); do
        echo "  for (int k = 1; k < 64; ++k) a[k] ^= (a[k - 1] << $((j % 7 + 1))) + $j;"
      done
      echo "  return a[63];"
      echo "}"
    } >"$dir/f$i.c"
  done
  {
    for ((i = 0; i < 40; i++)); do echo "unsigned long f$i(unsigned long);"; done
    echo "#include <stdio.h>"
    echo "int main(void) { unsigned long s = 0;"
    for ((i = 0; i < 40; i++)); do echo "  s += f$i(s + $i);"; done
    echo "  printf(\"%lu\\n\", s); return 0; }"
  } >"$dir/main.c"
  cat >"$dir/Makefile" <<'MK'
OBJS := $(patsubst %.c,%.o,$(wildcard f*.c)) main.o
prog: $(OBJS)
	gcc -o $@ $(OBJS)
%.o: %.c
	gcc -O2 -c $< -o $@
MK
}
make_project "$W/ref"
make_project "$W/src"
make -C "$W/ref" -j2 -s >"$W/ref.log" 2>&1 || e2e_die "uninterrupted build failed"

NAME=e2e-make-$$-$RANDOM
e2e_vos_run "$NAME" "$W/run.log" make -C "$W/src" -j2 -s
for ((i = 0; i < 400; i++)); do
  (($(find "$W/src" -name '*.o' | wc -l) >= 8)) && break
  sleep 0.02
done
e2e_checkpoint "$NAME" "$W/img" --kill
built=$(find "$W/src" -name '*.o' | wc -l)
[[ ! -e $W/src/prog ]] || e2e_die "the build finished before the checkpoint"
e2e_log "checkpointed make -j2 with $built of 41 objects built"
e2e_restore_wait "$IMG" "$W/restore.log"
((WAIT_RC == 0)) || e2e_die "restored make exited with status $WAIT_RC: $(cat "$W/restore.log")"
for f in prog $(cd "$W/ref" && ls ./*.o); do
  cmp -s "$W/ref/$f" "$W/src/$f" || e2e_die "$f differs from the uninterrupted build"
done
[[ $("$W/src/prog") == $("$W/ref/prog") ]] || e2e_die "the program built prints something else"
e2e_log "PASS: make -j2 ($built objects before the checkpoint)"
