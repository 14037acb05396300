// Forks one child; parent and child both count. Tests that children join the computation.
// Usage: forker [interval_ms]
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 100;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  pid_t child = fork();
  if (child < 0) return 1;
  const char *who = child == 0 ? "child" : "parent";
  for (long count = 0;; count++) {
    printf("%s %ld\n", who, count);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
