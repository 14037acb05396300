// A tree of processes: the root forks `fan` children and each of them `fan - 1` children of
// its own, until `total` processes exist. Every process checks each tick that getppid() is
// its parent's pid as fork() gave it and getpid() its own; the root prints "<n> <count>".
// Usage: tree [total] [interval_ms]
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct timespec delay;

static void watch(pid_t self, pid_t parent) {
  for (;;) {
    if (getpid() != self || getppid() != parent) {
      printf("BAD pid %d/%d ppid %d/%d\n", getpid(), self, getppid(), parent);
      fflush(stdout);
    }
    nanosleep(&delay, NULL);
  }
}

int main(int argc, char **argv) {
  int total = argc > 1 ? atoi(argv[1]) : 50;
  long interval_ms = argc > 2 ? atol(argv[2]) : 100;
  delay = (struct timespec){interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  int fan = 7, made = 1;
  pid_t root = getpid();
  for (int i = 0; i < fan && made < total; i++) {
    int own = (total - made - 1) / (fan - i);  // grandchildren under this child
    made += 1 + own;
    pid_t pid = fork();
    if (pid != 0) continue;
    pid_t self = getpid();
    for (int j = 0; j < own; j++) {
      pid_t grandchild = fork();
      if (grandchild == 0) watch(getpid(), self);
    }
    watch(self, root);
  }
  for (long count = 0;; count++) {
    printf("%ld %d\n", count, made);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
