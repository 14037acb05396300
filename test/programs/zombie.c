// Keeps an exited child unreaped and checks every tick, without reaping it, that it is still
// a zombie with its exit status 7 (waitid with WNOWAIT). Prints "<n> zombie <pid>" or BAD.
// Usage: zombie [interval_ms]
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 100;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) _exit(7);
  for (long count = 0;; count++) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc = waitid(P_PID, child, &info, WEXITED | WNOHANG | WNOWAIT);
    if (count > 0 && (rc != 0 || info.si_pid != child || info.si_status != 7)) {
      printf("%ld BAD rc %d pid %d/%d status %d\n", count, rc, info.si_pid, child, info.si_status);
    } else {
      printf("%ld zombie %d\n", count, child);
    }
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
