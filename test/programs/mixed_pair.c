// A parent that forks and execs a partner program (the same source built for the other word
// size) and talks with it over a pipe each way. The parent keeps three messages in flight
// (so that the pipes hold bytes at a checkpoint); each carries the child's pid as fork()
// returned it and the parent's pid, which the child compares with getpid() and getppid();
// each reply carries the child's getpid() and word size, which the parent checks. Prints
// "<round> ok <parent bits> <child bits>" or a line with BAD.
// Usage: mixed_pair PARTNER [interval_ms]; the child runs as: PARTNER --child READ_FD WRITE_FD
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define BITS ((int)(sizeof(void *) * 8))

static int child_loop(int read_fd, int write_fd) {
  FILE *in = fdopen(read_fd, "r");
  FILE *out = fdopen(write_fd, "w");
  long round, expected = 0;
  int pid, ppid;
  if (!in || !out) return 1;
  while (fscanf(in, "%ld %d %d", &round, &pid, &ppid) == 3) {
    if (round != expected || pid != getpid() || ppid != getppid()) {
      fprintf(out, "%ld BAD child pid %d/%d ppid %d/%d round %ld\n", round, pid, getpid(), ppid,
              getppid(), expected);
    } else {
      fprintf(out, "%ld %d %d\n", round, getpid(), BITS);
    }
    fflush(out);
    expected++;
  }
  return 0;
}

static pid_t start_partner(const char *partner, FILE **to, FILE **from) {
  int down[2], up[2];
  if (pipe(down) || pipe(up)) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    char read_fd[16], write_fd[16];
    close(down[1]);
    close(up[0]);
    snprintf(read_fd, sizeof read_fd, "%d", down[0]);
    snprintf(write_fd, sizeof write_fd, "%d", up[1]);
    execl(partner, partner, "--child", read_fd, write_fd, (char *)NULL);
    perror("exec partner");
    _exit(127);
  }
  close(down[0]);
  close(up[1]);
  *to = fdopen(down[1], "w");
  *from = fdopen(up[0], "r");
  return pid;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0) {
    return child_loop(atoi(argv[2]), atoi(argv[3]));
  }
  if (argc < 2) return 64;
  long interval_ms = argc > 2 ? atol(argv[2]) : 50;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  FILE *to, *from;
  pid_t child = start_partner(argv[1], &to, &from);
  if (child < 0 || !to || !from) return 1;
  const long window = 3;
  for (long round = 0;; round++) {
    for (long ahead = round == 0 ? 0 : window - 1; ahead < window; ahead++) {
      fprintf(to, "%ld %d %d\n", round + ahead, child, getpid());
    }
    fflush(to);
    char line[256];
    long got;
    int pid, bits;
    if (!fgets(line, sizeof line, from)) return 2;
    if (sscanf(line, "%ld %d %d", &got, &pid, &bits) != 3 || got != round || pid != child) {
      printf("%ld BAD reply: %s", round, line);
    } else {
      printf("%ld ok %d %d\n", round, BITS, bits);
    }
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
