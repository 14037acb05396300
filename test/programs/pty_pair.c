// A pseudo-terminal inside the computation: the parent holds the master, the child leads a
// session whose controlling terminal is the slave, with echo off. Each round the parent
// writes "ping N" to the master and reads the child's answer, "pong N" followed by what the
// child sees of its terminal: that its group is the foreground one, that echo is still off,
// that it still leads its session. The parent prints "<N> ok", or "<N> BAD <answer>".
// Usage: pty_pair [interval_ms]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void child(const char *name) {
  setsid();
  int slave = open(name, O_RDWR);  // The session's controlling terminal from now on.
  if (slave < 0) _exit(2);
  dup2(slave, 0);
  dup2(slave, 1);
  dup2(slave, 2);
  if (slave > 2) close(slave);
  struct termios settings;
  tcgetattr(0, &settings);
  settings.c_lflag &= ~ECHO;
  tcsetattr(0, TCSANOW, &settings);
  printf("ready\n");  // Nothing written before this is echoed.
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin) != NULL) {
    long n = 0;
    if (sscanf(line, "ping %ld", &n) != 1) continue;
    tcgetattr(0, &settings);
    printf("pong %ld foreground=%d echo=%d leader=%d\n", n, tcgetpgrp(0) == getpgrp(),
           (settings.c_lflag & ECHO) != 0, getsid(0) == getpid());
    fflush(stdout);
  }
  _exit(0);
}

/// One line from the master, without the terminal's carriage return.
static int read_line(int master, char *line, size_t size) {
  size_t used = 0;
  while (used + 1 < size) {
    char byte;
    if (read(master, &byte, 1) != 1) return -1;
    if (byte == '\r') continue;
    if (byte == '\n') break;
    line[used++] = byte;
  }
  line[used] = 0;
  return 0;
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 100;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return 1;
  char name[64];
  snprintf(name, sizeof name, "%s", ptsname(master));
  if (fork() == 0) {
    close(master);
    child(name);
  }
  char line[256], expected[256];
  do {
    if (read_line(master, line, sizeof line) != 0) return 1;
  } while (strcmp(line, "ready") != 0);
  for (long n = 0;; n++) {
    dprintf(master, "ping %ld\n", n);
    if (read_line(master, line, sizeof line) != 0) return 1;
    snprintf(expected, sizeof expected, "pong %ld foreground=1 echo=0 leader=1", n);
    if (strcmp(line, expected) == 0) printf("%ld ok\n", n);
    else printf("%ld BAD %s\n", n, line);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
