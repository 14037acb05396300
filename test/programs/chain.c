// A hash chain: each step mixes the previous value with the step number, so any lost, repeated
// or corrupted step shows in the output. State lives in the heap. Usage: chain [interval_ms]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct state {
  uint64_t step;
  uint64_t value;
};

static uint64_t mix(uint64_t value, uint64_t step) {
  value ^= step + 0x9e3779b97f4a7c15ULL + (value << 6) + (value >> 2);
  value *= 0xff51afd7ed558ccdULL;
  return value ^ (value >> 33);
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 20;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  struct state *state = calloc(1, sizeof *state);
  if (state == NULL) return 1;
  for (;;) {
    state->step += 1;
    state->value = mix(state->value, state->step);
    printf("%llu %016llx\n", (unsigned long long)state->step, (unsigned long long)state->value);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
