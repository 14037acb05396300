// Holds SIZE MiB of heap, filled with random data, or with zeros (and a sparse 1% of random
// bytes), then prints a tick every TICK ms: the benchmark's subject for checkpoint and restart
// time. Usage: heap_ticker SIZE_MIB random|zero [tick_ms]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
  size_t size = (size_t)(argc > 1 ? atol(argv[1]) : 64) << 20;
  int zero = argc > 2 && strcmp(argv[2], "zero") == 0;
  long tick_ms = argc > 3 ? atol(argv[3]) : 1;
  uint64_t *words = malloc(size);
  if (words == NULL) return 1;
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  size_t count = size / sizeof(uint64_t);
  if (zero) memset(words, 0, size);
  // Zero heap: one word of data in every 100th page, so 99% of the pages are all zero.
  size_t stride = zero ? 100 * 4096 / sizeof(uint64_t) : 1;
  for (size_t i = 0; i < count; i += stride) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    words[i] = seed;
  }
  printf("ready\n");
  fflush(stdout);
  struct timespec delay = {tick_ms / 1000, (tick_ms % 1000) * 1000000L};
  for (uint64_t tick = 1;; tick++) {
    printf("%llu\n", (unsigned long long)tick);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
