// Four workers note their thread id when they start, through gettid() (which the runtime
// interposes) and syscall(SYS_gettid), name themselves "worker-<i>", and check every tick that
// both still answer the noted id. Each round the main thread checks, for every worker, by the
// noted id: that /proc/self/task/<tid>/comm and /proc/<pid>/task/<tid>/comm name that worker,
// and that pthread_kill, tgkill and tkill (both through syscall()) each reach it (its SIGUSR1
// count goes up by one for each). Prints "<round> threads ok" per round, or a line with BAD.
// Usage: thread_ids [interval_ms]
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { WORKERS = 4 };

// glibc 2.30 and later have gettid(); the runtime exports its own.
extern pid_t gettid(void) __attribute__((weak));

static pthread_t threads[WORKERS];
static volatile pid_t noted[WORKERS];
static volatile sig_atomic_t hits[WORKERS];
static volatile int bad[WORKERS];
static __thread int my_index = -1;

static pid_t library_tid(void) {
  return gettid ? gettid() : (pid_t)syscall(SYS_gettid);
}

static void on_signal(int signal) {
  (void)signal;
  if (my_index >= 0) hits[my_index] += 1;
}

static void pause_ms(long ms) {
  struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&delay, NULL);
}

static void *worker(void *arg) {
  my_index = (int)(long)arg;
  char name[16];
  snprintf(name, sizeof name, "worker-%d", my_index);
  pthread_setname_np(pthread_self(), name);
  noted[my_index] = library_tid();
  for (;;) {
    pid_t raw = (pid_t)syscall(SYS_gettid);
    if (library_tid() != noted[my_index] || raw != noted[my_index]) bad[my_index] = raw;
    pause_ms(5);
  }
  return NULL;
}

/// The first line of `path`, without its newline; empty when it cannot be read.
static void read_line(const char *path, char *line, size_t size) {
  line[0] = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  ssize_t count = read(fd, line, size - 1);
  close(fd);
  if (count <= 0) return;
  line[count] = 0;
  line[strcspn(line, "\n")] = 0;
}

static int names_match(int index) {
  char path[64], expected[16], line[64];
  snprintf(expected, sizeof expected, "worker-%d", index);
  snprintf(path, sizeof path, "/proc/self/task/%d/comm", noted[index]);
  read_line(path, line, sizeof line);
  if (strcmp(line, expected) != 0) return 0;
  snprintf(path, sizeof path, "/proc/%d/task/%d/comm", getpid(), noted[index]);
  read_line(path, line, sizeof line);
  return strcmp(line, expected) == 0;
}

/// Waits (2 s at most) for one more SIGUSR1 in worker `index` than `before`.
static int arrived(int index, sig_atomic_t before) {
  for (int waited = 0; waited < 2000 && hits[index] == before; waited++) pause_ms(1);
  return hits[index] == before + 1;
}

/// Three signals by three routes, one at a time (a standard signal is pending once at most):
/// each must reach the worker.
static int signals_arrive(int index) {
  sig_atomic_t before = hits[index];
  if (pthread_kill(threads[index], SIGUSR1) != 0 || !arrived(index, before)) return 0;
  before = hits[index];
  if (syscall(SYS_tgkill, getpid(), noted[index], SIGUSR1) != 0) return 0;
  if (!arrived(index, before)) return 0;
  before = hits[index];
  if (syscall(SYS_tkill, noted[index], SIGUSR1) != 0) return 0;
  return arrived(index, before);
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 50;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, NULL);
  for (long i = 0; i < WORKERS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
  for (int i = 0; i < WORKERS; i++) {
    while (noted[i] == 0) pause_ms(1);
  }
  for (long round = 0;; round++) {
    int ok = 1;
    for (int i = 0; i < WORKERS; i++) {
      if (bad[i] != 0) printf("%ld BAD worker %d id %d, noted %d\n", round, i, bad[i], noted[i]);
      if (!names_match(i)) printf("%ld BAD worker %d not found by id %d\n", round, i, noted[i]);
      if (!signals_arrive(i)) printf("%ld BAD worker %d not signalled\n", round, i);
      ok = ok && bad[i] == 0;
    }
    if (ok) printf("%ld threads ok\n", round);
    fflush(stdout);
    pause_ms(interval_ms);
  }
}
