// A process that execs itself every round, carrying its first pid and its parent's in its
// arguments: each new program must see the same getpid() and getppid(), after a restart too
// (where the runtime of the exec'd program reads the ids from the restart's pid map), and
// readlink of /proc/self/exe must name this program, also in a process just restarted.
// Prints "<round> ok", or "<round> BAD ..." with the ids it saw.
// Usage: exec_ids [interval_ms]   (with ROUND PID PPID after, when exec'd)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 100;
  long round = argc > 4 ? atol(argv[2]) : 0;
  long pid = argc > 4 ? atol(argv[3]) : getpid();
  long ppid = argc > 4 ? atol(argv[4]) : getppid();
  if (getpid() == pid && getppid() == ppid) printf("%ld ok\n", round);
  else printf("%ld BAD pid %d of %ld, ppid %d of %ld\n", round, getpid(), pid, getppid(), ppid);
  fflush(stdout);
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  nanosleep(&delay, NULL);
  // A restart may have come during the sleep: the executable must still be this program.
  char exe[4096];
  ssize_t size = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[size > 0 ? size : 0] = 0;
  size_t name = strlen("/exec_ids");
  if (size < (ssize_t)name || strcmp(exe + size - name, "/exec_ids") != 0) {
    printf("%ld BAD exe %s\n", round, exe);
    fflush(stdout);
  }
  char numbers[4][24];
  snprintf(numbers[0], sizeof numbers[0], "%ld", interval_ms);
  snprintf(numbers[1], sizeof numbers[1], "%ld", round + 1);
  snprintf(numbers[2], sizeof numbers[2], "%ld", pid);
  snprintf(numbers[3], sizeof numbers[3], "%ld", ppid);
  // Through /proc/self/exe, which after a restart the kernel has naming mtcp_restart: the
  // runtime's execv hands the program's own path on (docs/processes.md).
  char *args[] = {argv[0], numbers[0], numbers[1], numbers[2], numbers[3], NULL};
  execv("/proc/self/exe", args);
  perror("execv");
  return 1;
}
