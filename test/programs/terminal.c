// A job-control program on a terminal: the parent puts its child in a process group of its
// own, makes that group the terminal's foreground and turns echo and canonical mode off; the
// child reads bytes from the terminal and answers each line with what it sees of the
// terminal: whether its group is in the foreground, whether echo is off, and the line.
// After a restart on another terminal all three must hold again (a background group
// reading the terminal would be stopped by SIGTTIN instead).
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void answer(const char *line) {
  struct termios now;
  tcgetattr(0, &now);
  int foreground = tcgetpgrp(0) == getpgrp();
  int raw = (now.c_lflag & (ECHO | ICANON)) == 0;
  printf("got %s foreground=%d raw=%d\n", line, foreground, raw);
  fflush(stdout);
}

static int child(void) {
  char line[256];
  size_t size = 0;
  for (;;) {
    char byte;
    ssize_t n = read(0, &byte, 1);
    if (n <= 0) return 1;
    if (byte == 'q') return 0;
    if (byte == '\n' || byte == '\r') {
      line[size] = 0;
      if (size > 0) answer(line);
      size = 0;
    } else if (size + 1 < sizeof line) {
      line[size++] = byte;
    }
  }
}

int main(void) {
  if (!isatty(0)) {
    fprintf(stderr, "terminal: stdin must be a terminal\n");
    return 2;
  }
  struct termios raw;
  tcgetattr(0, &raw);
  raw.c_lflag &= ~(ECHO | ICANON);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  tcsetattr(0, TCSANOW, &raw);
  signal(SIGTTOU, SIG_IGN);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    signal(SIGTTOU, SIG_DFL);
    return child();
  }
  setpgid(pid, pid);
  tcsetpgrp(0, pid);
  printf("ready %d\n", pid);
  fflush(stdout);
  int status = 0;
  waitpid(pid, &status, 0);
  tcsetpgrp(0, getpgrp());
  printf("child ended %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}
