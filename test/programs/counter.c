// Counts once per interval and prints each count; a simple long-running program for launch
// and checkpoint tests. Usage: counter [interval_ms] [limit]
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 100;
  long limit = argc > 2 ? atol(argv[2]) : -1;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  for (long count = 0; limit < 0 || count < limit; count++) {
    printf("%ld\n", count);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
  return 0;
}
