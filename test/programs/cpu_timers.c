// Timers that signals_timers.c does not cover, for checkpoint and restart tests:
// - ITIMER_VIRTUAL (SIGVTALRM) and ITIMER_PROF (SIGPROF), which count this process's CPU time;
// - a POSIX timer on CLOCK_PROCESS_CPUTIME_ID (SIGRTMIN+1);
// - with the argument "thread": a SIGEV_THREAD POSIX timer (glibc runs the function on a new
//   thread, signalled by its helper thread), and a SIGEV_THREAD timer created and deleted
//   every round, which needs glibc's helper thread to be reachable;
// - a 5 ms POSIX timer whose signal (SIGRTMIN+2) stays blocked: each round takes it with
//   sigtimedwait and adds 1 + si_overrun to the expirations seen.
// The main thread spins (CPU time must pass for the CPU clocks) and every 50 ms of real time
// prints "round R virtual V prof P cpu C thread T expirations E overrun O", where O is the
// overrun of the last signal taken. On a failure it prints "BAD ..." and exits 1.
// Usage: cpu_timers [thread]
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t virtual_count, prof_count, cpu_count, thread_count;

static void on_signal(int signal) {
  if (signal == SIGVTALRM) virtual_count += 1;
  if (signal == SIGPROF) prof_count += 1;
  if (signal == SIGRTMIN + 1) cpu_count += 1;
}

static void on_thread_timer(union sigval value) {
  if (value.sival_int == 77) __atomic_add_fetch(&thread_count, 1, __ATOMIC_RELAXED);
}

static void nothing(union sigval value) { (void)value; }

static int timer(clockid_t clock, struct sigevent *event, long interval_ns, timer_t *id) {
  if (timer_create(clock, event, id) != 0) return -1;
  struct itimerspec spec = {{0, interval_ns}, {0, interval_ns}};
  return timer_settime(*id, 0, &spec, NULL);
}

static const char *install(int with_thread) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  action.sa_flags = SA_RESTART;
  sigaction(SIGVTALRM, &action, NULL);
  sigaction(SIGPROF, &action, NULL);
  sigaction(SIGRTMIN + 1, &action, NULL);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGRTMIN + 2);
  sigprocmask(SIG_BLOCK, &blocked, NULL);
  struct itimerval interval = {{0, 10000}, {0, 10000}};
  if (setitimer(ITIMER_VIRTUAL, &interval, NULL) != 0) return "setitimer virtual";
  if (setitimer(ITIMER_PROF, &interval, NULL) != 0) return "setitimer prof";
  struct sigevent event;
  memset(&event, 0, sizeof event);
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = SIGRTMIN + 1;
  timer_t cpu, thread, overrun;
  if (timer(CLOCK_PROCESS_CPUTIME_ID, &event, 20000000, &cpu) != 0) return "cpu timer";
  event.sigev_signo = SIGRTMIN + 2;
  if (timer(CLOCK_MONOTONIC, &event, 5000000, &overrun) != 0) return "overrun timer";
  if (!with_thread) return NULL;
  memset(&event, 0, sizeof event);
  event.sigev_notify = SIGEV_THREAD;
  event.sigev_notify_function = on_thread_timer;
  event.sigev_value.sival_int = 77;
  if (timer(CLOCK_MONOTONIC, &event, 20000000, &thread) != 0) return "thread timer";
  return NULL;
}

static double now(clockid_t clock) {
  struct timespec time;
  clock_gettime(clock, &time);
  return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

/// A SIGEV_THREAD timer made and deleted again: glibc sends its signal to its helper thread.
static const char *churn(void) {
  struct sigevent event;
  memset(&event, 0, sizeof event);
  event.sigev_notify = SIGEV_THREAD;
  event.sigev_notify_function = nothing;
  timer_t id;
  if (timer_create(CLOCK_MONOTONIC, &event, &id) != 0) return strerror(errno);
  timer_delete(id);
  return NULL;
}

int main(int argc, char **argv) {
  int with_thread = argc > 1 && strcmp(argv[1], "thread") == 0;
  const char *bad = install(with_thread);
  long expirations = 0, overrun = 0;
  sigset_t overrun_set;
  sigemptyset(&overrun_set);
  sigaddset(&overrun_set, SIGRTMIN + 2);
  for (long round = 1; bad == NULL; round++) {
    double until = now(CLOCK_MONOTONIC) + 0.05;
    while (now(CLOCK_MONOTONIC) < until) {
    }
    siginfo_t info;
    struct timespec zero = {0, 0};
    while (sigtimedwait(&overrun_set, &info, &zero) > 0) {
      expirations += 1 + info.si_overrun;
      overrun = info.si_overrun;
    }
    if (with_thread) bad = churn();
    if (bad != NULL) break;
    printf("round %ld virtual %d prof %d cpu %d thread %d expirations %ld overrun %ld\n", round,
           virtual_count, prof_count, cpu_count, thread_count, expirations, overrun);
    fflush(stdout);
  }
  printf("BAD %s\n", bad);
  return 1;
}
