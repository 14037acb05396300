// Signal handlers in a multi-threaded program, which must run and return after every restart:
// SIGALRM from an interval timer (a plain handler) and SIGUSR1 raised by the main thread (an
// SA_SIGINFO handler), while four threads sleep in a loop. glibc on aarch64 installs handlers
// without a return trampoline of their own (SA_RESTORER); under qemu-user the system's one
// may be gone after a restart. Also checks that sigaction reports the flags it reported
// before. Each round prints "round R alarms A usr1 U"; exits 1 with "BAD" on a failure.
// Usage: threaded_handlers [interval_ms]
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t alarms, usr1;

static void on_alarm(int signal) {
  (void)signal;
  alarms += 1;
}

static void on_usr1(int signal, siginfo_t *info, void *context) {
  (void)context;
  if (signal == SIGUSR1 && info->si_signo == SIGUSR1) usr1 += 1;
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) {
    struct timespec delay = {0, 5000000};
    nanosleep(&delay, NULL);
  }
  return NULL;
}

static int flags_of(int signal) {
  struct sigaction action;
  sigaction(signal, NULL, &action);
  return action.sa_flags;
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 50;
  for (int i = 0; i < 4; i++) {
    pthread_t thread;
    pthread_create(&thread, NULL, sleeper, NULL);
  }
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_alarm;
  action.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &action, NULL);
  action.sa_sigaction = on_usr1;
  action.sa_flags = SA_RESTART | SA_SIGINFO;
  sigaction(SIGUSR1, &action, NULL);
  int alarm_flags = flags_of(SIGALRM), usr1_flags = flags_of(SIGUSR1);
  struct itimerval interval = {{0, 10000}, {0, 10000}};
  setitimer(ITIMER_REAL, &interval, NULL);
  for (long round = 1;; round++) {
    struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
    while (nanosleep(&delay, &delay) != 0) {
    }
    raise(SIGUSR1);
    if (flags_of(SIGALRM) != alarm_flags || flags_of(SIGUSR1) != usr1_flags) {
      printf("BAD flags %#x %#x, were %#x %#x\n", flags_of(SIGALRM), flags_of(SIGUSR1),
             alarm_flags, usr1_flags);
      return 1;
    }
    printf("round %ld alarms %d usr1 %d\n", round, alarms, usr1);
    fflush(stdout);
  }
}
