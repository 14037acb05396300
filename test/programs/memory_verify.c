// Holds SIZE MiB of pseudo-random data and verifies all of it every round, so a restart that
// loses or corrupts one page is caught. Prints "ready <checksum>" once filled, then
// "ok <round> <checksum>" per round; exits 1 with "CORRUPT" on a mismatch.
// Usage: memory_verify SIZE_MIB [interval_ms]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t next(uint64_t *seed) {
  *seed ^= *seed << 13;
  *seed ^= *seed >> 7;
  *seed ^= *seed << 17;
  return *seed;
}

static uint64_t checksum(const uint64_t *words, size_t count) {
  uint64_t sum = 0;
  for (size_t i = 0; i < count; i++) sum = (sum ^ words[i]) * 0x100000001b3ULL;
  return sum;
}

int main(int argc, char **argv) {
  size_t size_mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
  long interval_ms = argc > 2 ? atol(argv[2]) : 100;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  size_t count = size_mib * 1024 * 1024 / sizeof(uint64_t);
  uint64_t *words = malloc(count * sizeof(uint64_t));
  if (words == NULL) return 1;
  uint64_t seed = 0x2545f4914f6cdd1dULL ^ (uint64_t)time(NULL);
  for (size_t i = 0; i < count; i++) words[i] = next(&seed);
  uint64_t expected = checksum(words, count);
  printf("ready %016llx\n", (unsigned long long)expected);
  fflush(stdout);
  for (long round = 1;; round++) {
    uint64_t actual = checksum(words, count);
    if (actual != expected) {
      printf("CORRUPT %016llx != %016llx\n", (unsigned long long)actual, (unsigned long long)expected);
      return 1;
    }
    printf("ok %ld %016llx\n", round, (unsigned long long)actual);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
