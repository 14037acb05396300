// Keeps its state in the heap and checks it every tick: a hash chain (each step depends on
// the previous one, so a restart that resumes from the wrong place or with a wrong heap shows
// at once) and optionally a block of pseudo-random data whose checksum is verified each tick.
// Prints "tick chain ok|BAD". Usage: hashchain [interval_ms] [data_mib] [limit]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct state {
  uint64_t tick;
  uint64_t chain;
  uint64_t data_checksum;
  size_t data_size;
  uint64_t *data;
};

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

static uint64_t checksum(const uint64_t *data, size_t count) {
  uint64_t sum = 0;
  for (size_t i = 0; i < count; i++) sum = sum * 31 + data[i];
  return sum;
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 100;
  long data_mib = argc > 2 ? atol(argv[2]) : 0;
  long limit = argc > 3 ? atol(argv[3]) : -1;
  struct state *state = calloc(1, sizeof *state);
  state->chain = 0x9e3779b97f4a7c15ULL;
  state->data_size = (size_t)data_mib << 20;
  if (state->data_size > 0) {
    state->data = malloc(state->data_size);
    if (!state->data) return 2;
    size_t count = state->data_size / 8;
    uint64_t x = 12345;
    for (size_t i = 0; i < count; i++) state->data[i] = x = mix(x + i);
    state->data_checksum = checksum(state->data, count);
  }
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  for (; limit < 0 || (long)state->tick < limit; state->tick++) {
    state->chain = mix(state->chain ^ state->tick);
    int ok = state->data_size == 0 ||
             checksum(state->data, state->data_size / 8) == state->data_checksum;
    printf("%llu %016llx %s\n", (unsigned long long)state->tick,
           (unsigned long long)state->chain, ok ? "ok" : "BAD");
    fflush(stdout);
    if (!ok) return 1;
    nanosleep(&delay, NULL);
  }
  return 0;
}
