// A parent and a child talk through two named FIFOs, DIR/down and DIR/up, each side keeping
// three records in flight (so that both FIFOs hold bytes at a checkpoint) and checking the
// other's: the round in order and the sender's pid. The parent prints "<round> ok", either
// side a line with BAD.
// Usage: fifo_family DIR [interval_ms]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct record {
  long round;
  int pid;
  int pad;
};

// Records are read one at a time with read(), never through stdio's buffer, so that what
// the other side sent ahead stays in the FIFO.
static int step(int out, int in, long round, int self, int peer) {
  for (long ahead = round == 0 ? 0 : 2; ahead < 3; ahead++) {
    struct record r = {round + ahead, self, 0};
    if (write(out, &r, sizeof r) != sizeof r) return 0;
  }
  struct record r;
  size_t done = 0;
  while (done < sizeof r) {
    ssize_t got = read(in, (char *)&r + done, sizeof r - done);
    if (got <= 0) return 0;
    done += (size_t)got;
  }
  if (r.round != round || r.pid != peer) {
    printf("%ld BAD got %ld from %d/%d\n", round, r.round, r.pid, peer);
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) return 1;
  long interval_ms = argc > 2 ? atol(argv[2]) : 50;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  char down[4096], up[4096];
  snprintf(down, sizeof down, "%s/down", argv[1]);
  snprintf(up, sizeof up, "%s/up", argv[1]);
  unlink(down);
  unlink(up);
  if (mkfifo(down, 0600) || mkfifo(up, 0600)) return 1;
  int parent = getpid();
  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    int in = open(down, O_RDONLY);
    int out = open(up, O_WRONLY);
    for (long round = 0;; round++) {
      if (!step(out, in, round, getpid(), parent)) fflush(stdout);
      nanosleep(&delay, NULL);
    }
  }
  int out = open(down, O_WRONLY);
  int in = open(up, O_RDONLY);
  for (long round = 0;; round++) {
    if (step(out, in, round, parent, child)) printf("%ld ok\n", round);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
