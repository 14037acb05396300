// Signals pending across checkpoints: with SIGUSR1, SIGHUP, SIGRTMIN+1 and SIGRTMIN+3 blocked,
// the program sends itself SIGUSR1 (process-wide, kill), SIGRTMIN+1 three times with values
// 1, 2, 3 (process-wide, sigqueue), SIGHUP to its main thread (pthread_kill) and SIGRTMIN+3
// with value 7 to a second thread (pthread_sigqueue), prints "pending ready" and counts
// "tick N" until a line arrives on stdin. Then both threads unblock: each signal must arrive
// exactly once, real-time ones in order with their values, thread-directed ones on their
// thread. It prints "got usr1=U hup=H rt1=a,b,c rt3=V on_thread=T" and exits 0, or "BAD".
// Also checks that SIGCHLD keeps SA_NOCLDSTOP and that SIGPIPE stays ignored.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, hup, rt3_value, rt3_on_thread, rt1_count;
static volatile int rt1_values[8];
static pthread_t second;
static volatile int second_ready, release_second;

static void on_signal(int signal, siginfo_t *info, void *context) {
  (void)context;
  if (signal == SIGUSR1) usr1 += 1;
  if (signal == SIGHUP) hup += 1;
  if (signal == SIGRTMIN + 1 && rt1_count < 8) rt1_values[rt1_count++] = info->si_value.sival_int;
  if (signal == SIGRTMIN + 3) {
    rt3_value = info->si_value.sival_int;
    rt3_on_thread = pthread_equal(pthread_self(), second);
  }
}

static sigset_t watched(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGRTMIN + 1);
  sigaddset(&set, SIGRTMIN + 3);
  return set;
}

static void *second_main(void *arg) {
  (void)arg;
  second_ready = 1;
  while (!release_second) usleep(1000);
  sigset_t set = watched();
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  return NULL;
}

static void install(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  int signals[] = {SIGUSR1, SIGHUP, SIGRTMIN + 1, SIGRTMIN + 3};
  for (int i = 0; i < 4; i++) sigaction(signals[i], &action, NULL);
  action.sa_handler = SIG_DFL;
  action.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &action, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static int flags_kept(void) {
  struct sigaction action;
  sigaction(SIGCHLD, NULL, &action);
  if (!(action.sa_flags & SA_NOCLDSTOP)) {
    printf("BAD SIGCHLD flags %#x handler %p\n", action.sa_flags, (void *)action.sa_handler);
    return 0;
  }
  sigaction(SIGPIPE, NULL, &action);
  if (action.sa_handler != SIG_IGN) printf("BAD SIGPIPE handler %p\n", (void *)action.sa_handler);
  return action.sa_handler == SIG_IGN;
}

int main(void) {
  install();
  sigset_t set = watched();
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_create(&second, NULL, second_main, NULL);
  while (!second_ready) usleep(1000);
  kill(getpid(), SIGUSR1);
  for (int value = 1; value <= 3; value++) sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = value});
  pthread_kill(pthread_self(), SIGHUP);
  pthread_sigqueue(second, SIGRTMIN + 3, (union sigval){.sival_int = 7});
  printf("pending ready\n");
  fflush(stdout);
  // The reader: a line on stdin (poll with a timeout, so that ticks continue) releases all.
  for (long tick = 1;; tick++) {
    struct timespec delay = {0, 20000000};
    nanosleep(&delay, NULL);
    if (!flags_kept() || usr1 || hup || rt1_count || rt3_value) {
      printf("BAD early usr1=%d hup=%d rt1=%d rt3=%d\n", usr1, hup, rt1_count, rt3_value);
      return 1;
    }
    printf("tick %ld\n", tick);
    fflush(stdout);
    fd_set ready;
    FD_ZERO(&ready);
    FD_SET(0, &ready);
    struct timeval none = {0, 0};
    if (select(1, &ready, NULL, NULL, &none) > 0) break;
  }
  release_second = 1;
  pthread_join(second, NULL);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  printf("got usr1=%d hup=%d rt1=", usr1, hup);
  for (int i = 0; i < rt1_count; i++) printf("%s%d", i ? "," : "", rt1_values[i]);
  printf(" rt3=%d on_thread=%d\n", rt3_value, rt3_on_thread);
  fflush(stdout);
  return 0;
}
