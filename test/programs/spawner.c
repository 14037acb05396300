// Starts three children that do not fork in the usual way: one with vfork and exec, one with
// posix_spawn, one with system() (its shell starts the child in the background and exits, so
// the child's parent becomes init), then counts itself. Each prints "<round> <label>"; the
// first two check that getppid() is the spawner's pid (which the spawner passes on), and
// print a line with BAD when not. (A parent blocked in system() is tested with `waiter`.)
// Usage: spawner [interval_ms]   (spawner child LABEL PARENT INTERVAL_MS runs one child)
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int child(const char *label, int parent, long interval_ms) {
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  for (long round = 0;; round++) {
    if (parent != 0 && getppid() != parent) {
      printf("%ld BAD %s ppid %d/%d\n", round, label, getppid(), parent);
    } else {
      printf("%ld %s\n", round, label);
    }
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}

int main(int argc, char **argv) {
  if (argc > 4 && strcmp(argv[1], "child") == 0) {
    return child(argv[2], atoi(argv[3]), atol(argv[4]));
  }
  const char *interval = argc > 1 ? argv[1] : "50";
  char self[4096], parent[32];
  ssize_t size = readlink("/proc/self/exe", self, sizeof self - 1);
  if (size <= 0) return 1;
  self[size] = 0;
  snprintf(parent, sizeof parent, "%d", getpid());
  pid_t pid = vfork();
  if (pid == 0) {
    execl(self, self, "child", "vfork", parent, interval, (char *)NULL);
    _exit(127);
  }
  char *spawned[] = {self, "child", "spawn", parent, (char *)interval, NULL};
  if (posix_spawn(&pid, self, NULL, NULL, spawned, environ) != 0) return 1;
  char command[8300];
  snprintf(command, sizeof command, "'%s' child system 0 %s &", self, interval);
  if (system(command) != 0) return 1;
  return child("parent", 0, atol(interval));
}
