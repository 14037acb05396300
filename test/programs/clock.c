// Reads the clocks through the vDSO (clock_gettime, gettimeofday, time) every tick and prints
// "tick T realtime_ms R"; exits 1 with "BAD" when the clocks disagree or go backwards, so a
// restart whose vDSO calls land in the wrong place shows. Usage: clock [interval_ms]
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 20;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  long long last_monotonic_ns = 0;
  for (long tick = 1;; tick++) {
    struct timespec realtime, monotonic;
    struct timeval timeval;
    clock_gettime(CLOCK_REALTIME, &realtime);
    clock_gettime(CLOCK_MONOTONIC, &monotonic);
    gettimeofday(&timeval, NULL);
    time_t seconds = time(NULL);
    long long monotonic_ns = monotonic.tv_sec * 1000000000LL + monotonic.tv_nsec;
    long long skew = (long long)timeval.tv_sec - (long long)realtime.tv_sec;
    if (monotonic_ns < last_monotonic_ns || skew < -1 || skew > 1 ||
        seconds < realtime.tv_sec - 1 || seconds > realtime.tv_sec + 1) {
      printf("BAD tick %ld\n", tick);
      return 1;
    }
    last_monotonic_ns = monotonic_ns;
    printf("%ld %lld\n", tick, realtime.tv_sec * 1000LL + realtime.tv_nsec / 1000000);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
