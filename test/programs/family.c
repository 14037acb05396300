// A parent and two children, a pipe each way between the parent and each child. The parent
// keeps three messages in flight on each pipe (so that pipes hold bytes at a checkpoint);
// each message carries the child's pid as fork() returned it and the parent's pid, which the
// child compares with getpid() and getppid(); each reply carries the child's getpid(), which
// the parent compares with fork()'s value. Prints "<round> ok" or a line with BAD.
// Usage: family [interval_ms]
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static void child_loop(FILE *in, FILE *out) {
  long round, expected = 0;
  int pid, ppid;
  while (fscanf(in, "%ld %d %d", &round, &pid, &ppid) == 3) {
    if (round != expected || pid != getpid() || ppid != getppid()) {
      fprintf(out, "%ld BAD child pid %d/%d ppid %d/%d round %ld\n", round, pid, getpid(), ppid,
              getppid(), expected);
    } else {
      fprintf(out, "%ld %d\n", round, getpid());
    }
    fflush(out);
    expected++;
  }
  exit(0);
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 50;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  FILE *to[2], *from[2];
  pid_t pids[2];
  for (int i = 0; i < 2; i++) {
    int down[2], up[2];
    if (pipe(down) || pipe(up)) return 1;
    pids[i] = fork();
    if (pids[i] < 0) return 1;
    if (pids[i] == 0) {
      close(down[1]);
      close(up[0]);
      if (i == 1) {
        fclose(to[0]);
        fclose(from[0]);
      }
      child_loop(fdopen(down[0], "r"), fdopen(up[1], "w"));
    }
    close(down[0]);
    close(up[1]);
    to[i] = fdopen(down[1], "w");
    from[i] = fdopen(up[0], "r");
  }
  const long window = 3;
  for (long round = 0;; round++) {
    for (int i = 0; i < 2; i++) {
      for (long ahead = round == 0 ? 0 : window - 1; ahead < window; ahead++) {
        fprintf(to[i], "%ld %d %d\n", round + ahead, pids[i], getpid());
      }
      fflush(to[i]);
    }
    int ok = 1;
    for (int i = 0; i < 2; i++) {
      char line[256];
      long got;
      int pid;
      if (!fgets(line, sizeof line, from[i])) return 2;
      if (sscanf(line, "%ld %d", &got, &pid) != 2 || got != round || pid != pids[i]) {
        printf("%ld BAD reply from child %d: %s", round, i, line);
        ok = 0;
      }
    }
    if (ok) printf("%ld ok\n", round);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
