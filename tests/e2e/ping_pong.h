// e2e helper: a ping-pong board in memory two processes share. Each side waits for its turn,
// checks the value the other side wrote, and writes its own: a board that is not shared after
// a restore (a copy per process) stalls the game, and a wrong value ends it.
#pragma once

#include "e2e_common.h"

struct Board {
  volatile uint64_t turn;   // odd: the child's, even: the parent's
  volatile uint64_t value;  // what the last mover wrote
};

static inline uint64_t board_value(uint64_t turn) {
  return e2e_mix(turn * 2654435761u);
}

// Waits (at most 3 s) for `b` to reach `turn`, then checks the other side's value and plays.
// NULL, or what went wrong.
static inline const char* board_play(struct Board* b, uint64_t turn) {
  double give_up = e2e_now() + 3.0;
  while (__atomic_load_n(&b->turn, __ATOMIC_ACQUIRE) != turn) {
    if (e2e_now() > give_up) {
      return "the other side never played";
    }
    e2e_sleep_until(e2e_now() + 0.0002);
  }
  if (turn > 0 && b->value != board_value(turn - 1)) {
    return "the other side's value is wrong";
  }
  b->value = board_value(turn);
  __atomic_store_n(&b->turn, turn + 1, __ATOMIC_RELEASE);
  return NULL;
}

// Paces a game: a turn takes ~20 us unpaced, so 4000 rounds could end before a checkpoint
// reached them; paced they last ~2 s.
static inline void board_pace(void) {
  e2e_sleep_until(e2e_now() + 0.0002);
}
