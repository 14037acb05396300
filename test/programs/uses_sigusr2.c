// A program that uses SIGUSR2 itself, dmtcp's default checkpoint signal: it installs a
// handler, raises the signal once (the handler must run), then blocks it. Each round it checks
// that sigaction and sigprocmask report what it set, and prints "round R usr2 N"; on a wrong
// answer it prints "BAD ..." and exits 1.
// Usage: uses_sigusr2 [interval_ms]
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t usr2;

static void on_usr2(int signal) {
  (void)signal;
  usr2 += 1;
}

static const char *check(void) {
  struct sigaction action;
  if (sigaction(SIGUSR2, NULL, &action) != 0) return "sigaction failed";
  if (action.sa_handler != on_usr2) return "handler not reported";
  if (!(action.sa_flags & SA_RESTART)) return "flags not reported";
  sigset_t mask;
  if (sigprocmask(SIG_BLOCK, NULL, &mask) != 0) return "sigprocmask failed";
  if (!sigismember(&mask, SIGUSR2)) return "SIGUSR2 not reported blocked";
  if (usr2 != 1) return "handler ran a wrong number of times";
  return NULL;
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 50;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_usr2;
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR2, &action, NULL);
  raise(SIGUSR2);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR2);
  sigprocmask(SIG_BLOCK, &blocked, NULL);
  for (long round = 1;; round++) {
    struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
    while (nanosleep(&delay, &delay) != 0) {
    }
    const char *bad = check();
    if (bad != NULL) {
      printf("BAD round %ld: %s (usr2 %d)\n", round, bad, usr2);
      return 1;
    }
    printf("round %ld usr2 %d\n", round, usr2);
    fflush(stdout);
  }
}
