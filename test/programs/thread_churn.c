// Creates and joins short-lived threads in a loop; each returns a value the main thread checks.
// Prints "round R joined J"; exits 1 with "BAD". Usage: thread_churn [threads_per_round]
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *square(void *arg) {
  uintptr_t value = (uintptr_t)arg;
  return (void *)(value * value);
}

int main(int argc, char **argv) {
  long per_round = argc > 1 ? atol(argv[1]) : 4;
  long joined = 0;
  for (long round = 1;; round++) {
    pthread_t threads[64];
    for (long i = 0; i < per_round && i < 64; i++) {
      if (pthread_create(&threads[i], NULL, square, (void *)(uintptr_t)(round + i)) != 0) return 1;
    }
    for (long i = 0; i < per_round && i < 64; i++) {
      void *result;
      pthread_join(threads[i], &result);
      uintptr_t expected = (uintptr_t)(round + i) * (uintptr_t)(round + i);
      if ((uintptr_t)result != expected) {
        printf("BAD round %ld\n", round);
        return 1;
      }
      joined += 1;
    }
    if (round % 100 == 0) {
      printf("round %ld joined %ld\n", round, joined);
      fflush(stdout);
    }
  }
}
