// N threads spinning on private counters, for checkpoint stress tests. Prints "alive R".
// Usage: busy_threads [threads]
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *spin(void *arg) {
  volatile uint64_t *counter = arg;
  for (;;) *counter += 1;
  return NULL;
}

int main(int argc, char **argv) {
  long count = argc > 1 ? atol(argv[1]) : 32;
  uint64_t *counters = calloc((size_t)count * 8, sizeof(uint64_t));
  pthread_t thread;
  for (long i = 0; i < count; i++) pthread_create(&thread, NULL, spin, &counters[i * 8]);
  struct timespec delay = {0, 50000000};
  for (long round = 1;; round++) {
    nanosleep(&delay, NULL);
    printf("alive %ld\n", round);
    fflush(stdout);
  }
}
