// A parent and a child talk over a stream, a seqpacket and a datagram socketpair and over a
// stream connection accepted on a Unix socket listening at PATH. Each side keeps three
// records in flight on every channel (so that both receive queues hold bytes at a
// checkpoint) and checks the other's: the round in order, and the sender's pid as fork()
// returned it and getppid() says. Every fifth round the child connects to PATH once more,
// so the listening socket must listen after a restart too. The parent prints "<round> ok",
// either side a line with BAD.
// Usage: socket_family PATH [interval_ms]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { channels = 4, window = 3 };

struct record {
  long round;
  int pid;
  int channel;
};

static int read_record(int fd, struct record *out) {
  size_t done = 0;
  while (done < sizeof *out) {
    ssize_t got = read(fd, (char *)out + done, sizeof *out - done);
    if (got <= 0) return -1;
    done += (size_t)got;
  }
  return 0;
}

static struct sockaddr_un address(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  return addr;
}

static void greet(const char *path, long round) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = address(path);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    printf("%ld BAD connect to the listening socket\n", round);
    fflush(stdout);
  } else {
    dprintf(fd, "hello %ld\n", round);
  }
  close(fd);
}

static int welcome(int listener, long round) {
  int fd = accept(listener, NULL, NULL);
  char line[64] = {0};
  if (fd < 0 || read(fd, line, sizeof line - 1) <= 0) return 0;
  close(fd);
  long got = -1;
  return sscanf(line, "hello %ld", &got) == 1 && got == round;
}

// One side: send round + window - 1 on every channel, then read and check round.
static int step(int *fds, long round, int self, int peer) {
  int ok = 1;
  for (long ahead = round == 0 ? 0 : window - 1; ahead < window; ahead++) {
    for (int c = 0; c < channels; c++) {
      struct record r = {round + ahead, self, c};
      if (write(fds[c], &r, sizeof r) != sizeof r) return 0;
    }
  }
  for (int c = 0; c < channels; c++) {
    struct record r;
    if (read_record(fds[c], &r) != 0) return 0;
    if (r.round != round || r.pid != peer || r.channel != c) {
      printf("%ld BAD channel %d: round %ld pid %d/%d\n", round, c, r.round, r.pid, peer);
      ok = 0;
    }
  }
  return ok;
}

int main(int argc, char **argv) {
  if (argc < 2) return 1;
  const char *path = argv[1];
  long interval_ms = argc > 2 ? atol(argv[2]) : 50;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  int types[3] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
  int pairs[3][2];
  for (int i = 0; i < 3; i++) {
    if (socketpair(AF_UNIX, types[i], 0, pairs[i])) return 1;
  }
  unlink(path);
  int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = address(path);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 8)) return 1;
  int parent = getpid();
  pid_t child = fork();
  if (child < 0) return 1;
  int fds[channels];
  if (child == 0) {
    close(listener);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) return 1;
    for (int i = 0; i < 3; i++) fds[i] = pairs[i][1], close(pairs[i][0]);
    fds[3] = fd;
    for (long round = 0;; round++) {
      if (getppid() != parent) printf("%ld BAD ppid %d/%d\n", round, getppid(), parent);
      if (!step(fds, round, getpid(), parent)) fflush(stdout);
      if (round % 5 == 0) greet(path, round);
      nanosleep(&delay, NULL);
    }
  }
  for (int i = 0; i < 3; i++) fds[i] = pairs[i][0], close(pairs[i][1]);
  fds[3] = accept(listener, NULL, NULL);
  for (long round = 0;; round++) {
    int ok = step(fds, round, parent, child);
    if (round % 5 == 0 && !welcome(listener, round)) {
      printf("%ld BAD no greeting\n", round);
      ok = 0;
    }
    if (ok) printf("%ld ok\n", round);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
