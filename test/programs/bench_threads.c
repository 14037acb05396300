// For benchmarks: N threads that mostly wait (each sleeps 1 ms at a time and bumps its
// counter), and M MiB of touched heap. Prints "alive R" every 50 ms. N = 0 gives the
// single-threaded program of the same memory size. Usage: bench_threads threads mib
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *wait_loop(void *arg) {
  volatile uint64_t *counter = arg;
  struct timespec delay = {0, 1000000};
  for (;;) {
    nanosleep(&delay, NULL);
    *counter += 1;
  }
  return NULL;
}

int main(int argc, char **argv) {
  long count = argc > 1 ? atol(argv[1]) : 64;
  long mib = argc > 2 ? atol(argv[2]) : 64;
  char *memory = malloc((size_t)mib << 20);
  for (size_t i = 0; i < ((size_t)mib << 20); i += 64) memory[i] = (char)(i * 2654435761u >> 13);
  uint64_t *counters = calloc((size_t)(count + 1) * 8, sizeof(uint64_t));
  pthread_t thread;
  for (long i = 0; i < count; i++) pthread_create(&thread, NULL, wait_loop, &counters[i * 8]);
  struct timespec delay = {0, 50000000};
  for (long round = 1;; round++) {
    nanosleep(&delay, NULL);
    printf("alive %ld %d\n", round, memory[round % ((size_t)mib << 20)]);
    fflush(stdout);
  }
}
