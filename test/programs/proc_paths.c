// A parent and its child, each named with prctl ("proc-parent", "proc-child"), check every
// round that /proc paths built from the ids getpid(), getppid() and fork() gave them reach the
// right process: open, fopen, stat, lstat, access, readlink and opendir on /proc/<pid>/...
// of the other process and of themselves, and that readlink("/proc/self") and
// readlink("/proc/thread-self") answer with getpid(). The parent prints "<round> paths ok"
// per round; either prints a line with BAD on a mismatch.
// Usage: proc_paths [interval_ms]
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms) {
  struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&delay, NULL);
}

/// /proc/<pid>/comm through open() and through fopen(): both must name `expected`.
static const char *check_name(pid_t pid, const char *expected) {
  char path[64], line[64] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return "open";
  ssize_t count = read(fd, line, sizeof line - 1);
  close(fd);
  line[count > 0 ? count : 0] = 0;
  if (strncmp(line, expected, strlen(expected)) != 0) return "open: another process";
  FILE *file = fopen(path, "r");
  if (file == NULL) return "fopen";
  char *got = fgets(line, sizeof line, file);
  fclose(file);
  if (got == NULL || strncmp(line, expected, strlen(expected)) != 0) return "fopen: another";
  return NULL;
}

/// The other path calls on /proc/<pid>: each must find it.
static const char *check_calls(pid_t pid) {
  char path[64], link[256];
  struct stat info;
  snprintf(path, sizeof path, "/proc/%d", pid);
  if (stat(path, &info) != 0 || !S_ISDIR(info.st_mode)) return "stat";
  snprintf(path, sizeof path, "/proc/%d/exe", pid);
  if (lstat(path, &info) != 0 || !S_ISLNK(info.st_mode)) return "lstat";
  if (readlink(path, link, sizeof link) <= 0) return "readlink";
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  if (access(path, R_OK) != 0) return "access";
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *dir = opendir(path);
  if (dir == NULL) return "opendir";
  closedir(dir);
  return NULL;
}

/// readlink of /proc/self and /proc/thread-self: this process's id as getpid() gives it.
static const char *check_self(void) {
  char link[64], expected[64];
  ssize_t size = readlink("/proc/self", link, sizeof link - 1);
  if (size <= 0) return "readlink /proc/self";
  link[size] = 0;
  snprintf(expected, sizeof expected, "%d", getpid());
  if (strcmp(link, expected) != 0) return "/proc/self is another pid";
  size = readlink("/proc/thread-self", link, sizeof link - 1);
  if (size <= 0) return "readlink /proc/thread-self";
  link[size] = 0;
  snprintf(expected, sizeof expected, "%d/task/%d", getpid(), getpid());
  if (strcmp(link, expected) != 0) return "/proc/thread-self is another thread";
  return NULL;
}

static const char *check(pid_t other, const char *other_name, const char *own_name) {
  const char *failed = check_name(other, other_name);
  if (failed == NULL) failed = check_calls(other);
  if (failed == NULL) failed = check_name(getpid(), own_name);
  if (failed == NULL) failed = check_self();
  return failed;
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 50;
  pid_t parent = getpid();
  prctl(PR_SET_NAME, "proc-parent", 0, 0, 0);
  int named[2];
  if (pipe(named) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_NAME, "proc-child", 0, 0, 0);
    close(named[0]);
    if (write(named[1], "n", 1) != 1) return 1;
    close(named[1]);
    for (long round = 0; getppid() == parent; round++) {
      const char *failed = check(parent, "proc-parent", "proc-child");
      if (failed != NULL) printf("%ld BAD child: %s\n", round, failed);
      fflush(stdout);
      pause_ms(interval_ms);
    }
    return 0;
  }
  // The child is named before the first round.
  char byte;
  close(named[1]);
  if (read(named[0], &byte, 1) != 1) return 1;
  close(named[0]);
  for (long round = 0;; round++) {
    const char *failed = check(child, "proc-child", "proc-parent");
    if (failed != NULL) {
      printf("%ld BAD parent: %s\n", round, failed);
    } else {
      printf("%ld paths ok\n", round);
    }
    fflush(stdout);
    pause_ms(interval_ms);
  }
}
