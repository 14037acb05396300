// Times the calls the runtime's wrappers interpose: getpid, kill(self, 0), an open/close pair
// on /dev/null and on /proc/<pid>/stat, and fork + waitpid of a child that exits at once (wall
// and CPU time). Prints "<name> <ns per call>" per line. With a delay, it first sleeps that
// long (time for a checkpoint and a restart, to time the wrappers once they translate).
// Usage: bench_pids [calls] [forks] [delay_ms]
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/// CPU time of this process and its waited-for children: what the calls cost, apart from
/// waiting for a CPU on a busy machine.
static double cpu_ns(void) {
  struct rusage self, children;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  double us = self.ru_utime.tv_sec * 1e6 + self.ru_utime.tv_usec + self.ru_stime.tv_sec * 1e6 +
              self.ru_stime.tv_usec + children.ru_utime.tv_sec * 1e6 + children.ru_utime.tv_usec +
              children.ru_stime.tv_sec * 1e6 + children.ru_stime.tv_usec;
  return us * 1e3;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
  long calls = argc > 1 ? atol(argv[1]) : 1000000;
  long forks = argc > 2 ? atol(argv[2]) : 200;
  long delay_ms = argc > 3 ? atol(argv[3]) : 0;
  struct timespec delay = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
  if (delay_ms > 0) nanosleep(&delay, NULL);
  volatile long sink = 0;
  double start = now_ns();
  for (long i = 0; i < calls; i++) sink += getpid();
  printf("getpid %.1f\n", (now_ns() - start) / calls);
  start = now_ns();
  for (long i = 0; i < calls; i++) sink += kill(getpid(), 0);
  printf("kill %.1f\n", (now_ns() - start) / calls);
  start = now_ns();
  for (long i = 0; i < calls / 10; i++) close(open("/dev/null", O_RDONLY));
  printf("open_close %.1f\n", (now_ns() - start) / (calls / 10));
  char proc_path[64];
  snprintf(proc_path, sizeof proc_path, "/proc/%d/stat", getpid());
  start = now_ns();
  for (long i = 0; i < calls / 10; i++) close(open(proc_path, O_RDONLY));
  printf("proc_open %.1f\n", (now_ns() - start) / (calls / 10));
  start = now_ns();
  double cpu_start = cpu_ns();
  for (long i = 0; i < forks; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
  }
  printf("fork_wait %.1f\n", (now_ns() - start) / forks);
  printf("fork_cpu %.1f\n", (cpu_ns() - cpu_start) / forks);
  fflush(stdout);
  return (int)(sink & 0);
}
