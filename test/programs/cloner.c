// A child made by clone() without CLONE_VM (a process, as from fork, but with no atfork
// handlers run by glibc): it must join the computation. It counts, checking each round that
// getpid() is still what it was; the parent waits for it.
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static long period_ms = 100;

static int child(void *arg) {
  pid_t first = getpid();
  for (long round = 0;; round++) {
    printf("%ld %s\n", round, getpid() == first && getppid() == *(pid_t *)arg ? "ok" : "BAD");
    fflush(stdout);
    usleep(period_ms * 1000);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1) period_ms = atol(argv[1]);
  size_t size = 1 << 20;
  char *stack = malloc(size);
  pid_t parent = getpid();
  pid_t pid = clone(child, stack + size, SIGCHLD, &parent);
  if (pid < 0) {
    perror("clone");
    return 1;
  }
  int status = 0;
  pid_t waited = waitpid(pid, &status, 0);
  printf("waited %d for %d\n", waited, pid);
  return 0;
}
