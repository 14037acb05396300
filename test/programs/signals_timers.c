// Signal and timer state that must survive restart: an interval timer delivering SIGALRM, a
// POSIX timer delivering SIGRTMIN with a value, a SIGUSR1 handler that must run on its
// alternate stack, SIGTERM blocked. Each round prints
// "round R alarms A rt B usr1 U" and checks the mask and handler flags; exits 1 with "BAD".
// Usage: signals_timers [interval_ms]
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, realtime, usr1, bad_stack, bad_value;
static char alt_stack[64 * 1024];

static void on_alarm(int signal) {
  (void)signal;
  alarms += 1;
}

static void on_realtime(int signal, siginfo_t *info, void *context) {
  (void)signal;
  (void)context;
  if (info->si_value.sival_int != 4242) bad_value = 1;
  realtime += 1;
}

static void on_usr1(int signal) {
  (void)signal;
  char local;
  if (&local < alt_stack || &local >= alt_stack + sizeof alt_stack) bad_stack = 1;
  usr1 += 1;
}

static void install(void) {
  stack_t stack = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
  sigaltstack(&stack, NULL);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_alarm;
  action.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &action, NULL);
  action.sa_handler = on_usr1;
  action.sa_flags = SA_RESTART | SA_ONSTACK;
  sigaction(SIGUSR1, &action, NULL);
  action.sa_sigaction = on_realtime;
  action.sa_flags = SA_RESTART | SA_SIGINFO;
  sigaction(SIGRTMIN, &action, NULL);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigprocmask(SIG_BLOCK, &blocked, NULL);
  struct itimerval interval = {{0, 20000}, {0, 20000}};
  setitimer(ITIMER_REAL, &interval, NULL);
  struct sigevent event;
  memset(&event, 0, sizeof event);
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = SIGRTMIN;
  event.sigev_value.sival_int = 4242;
  timer_t timer;
  timer_create(CLOCK_MONOTONIC, &event, &timer);
  struct itimerspec spec = {{0, 30000000}, {0, 30000000}};
  timer_settime(timer, 0, &spec, NULL);
}

static int checks_fail(void) {
  sigset_t mask;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  if (!sigismember(&mask, SIGTERM)) return 1;
  struct sigaction action;
  sigaction(SIGUSR1, NULL, &action);
  if (!(action.sa_flags & SA_ONSTACK) || action.sa_handler != on_usr1) return 1;
  return bad_stack || bad_value;
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 50;
  install();
  for (long round = 1;; round++) {
    struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
    while (nanosleep(&delay, &delay) != 0) {
    }
    raise(SIGUSR1);
    if (checks_fail()) {
      printf("BAD round %ld stack %d value %d\n", round, bad_stack, bad_value);
      return 1;
    }
    printf("round %ld alarms %d rt %d usr1 %d\n", round, alarms, realtime, usr1);
    fflush(stdout);
  }
}
