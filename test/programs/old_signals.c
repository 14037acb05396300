// Older signal interfaces, which glibc implements on its internals (no wrapper of ours on
// the way unless we export them): the main thread waits for SIGALRM in sigsuspend with every
// other signal blocked, brackets each tick with BSD's sigblock(~0)/sigsetmask and System V's
// sighold/sigrelse and sigset(SIG_HOLD), and ignores SIGPIPE with sigignore. A checkpoint
// must still stop it, though the thread spends nearly all its time in sigsuspend (longer
// than the checkpoint waits for a thread that blocks its signal). Prints "<round> <ticks>"
// each tick, and BAD when a call fails.
// Usage: old_signals [tick_ms]
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

static volatile sig_atomic_t ticks;

static void on_alarm(int signal) {
  (void)signal;
  ticks += 1;
}

int main(int argc, char **argv) {
  long tick_ms = argc > 1 ? atol(argv[1]) : 300;
  signal(SIGALRM, on_alarm);
  if (sigignore(SIGPIPE) != 0) puts("BAD sigignore");
  struct itimerval interval = {{0, tick_ms * 1000}, {0, tick_ms * 1000}};
  setitimer(ITIMER_REAL, &interval, NULL);
  sigset_t wait_mask;
  sigfillset(&wait_mask);
  sigdelset(&wait_mask, SIGALRM);
  for (long round = 0;; round++) {
    long seen = ticks;
    while (ticks < seen + 1) {
      int old = sigblock(~0);
      if (sighold(SIGHUP) != 0 || sigset(SIGINT, SIG_HOLD) == SIG_ERR) puts("BAD hold");
      if (sigrelse(SIGHUP) != 0 || sigset(SIGINT, SIG_DFL) != SIG_HOLD) puts("BAD release");
      sigsetmask(old);
      sigsuspend(&wait_mask);
    }
    printf("%ld %ld\n", round, (long)ticks);
    fflush(stdout);
  }
}
