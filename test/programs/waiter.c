// Waits for a child in one of three ways, round after round, and checks what each wait returns:
//   system   system("read line < FIFO; exit 7") must return exit status 7 (glibc waits for
//            the shell with its own wait4 on the shell's pid, and compares the pid it gets);
//   waitpid  fork a child that reads a line from FIFO and exits 9; waitpid(child) must
//            return the child's pid;
//   raw      the same child, waited for with syscall(SYS_waitid, P_PID, child, ...): si_pid
//            must be the child's pid.
// Each child waits for a line written to FIFO, so checkpoints come while the parent waits for
// as long as the test likes; after a restart the wait must go on for the same child. Prints
// "<round> <mode> <status>" per round, or a line with BAD.
// Usage: waiter MODE FIFO
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t start_child(const char *fifo) {
  pid_t child = fork();
  if (child == 0) {
    char line[64];
    int fd = open(fifo, O_RDONLY);
    if (fd < 0 || read(fd, line, sizeof line) <= 0) _exit(1);
    _exit(9);
  }
  return child;
}

static int by_system(const char *fifo) {
  char command[4200];
  snprintf(command, sizeof command, "read line < '%s'; exit 7", fifo);
  int status = system(command);
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

static int by_waitpid(const char *fifo) {
  pid_t child = start_child(fifo);
  int status = 0;
  pid_t waited = waitpid(child, &status, 0);
  if (waited != child) {
    printf("BAD waitpid returned %d for child %d\n", waited, child);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int by_raw_waitid(const char *fifo) {
  pid_t child = start_child(fifo);
  siginfo_t info;
  memset(&info, 0, sizeof info);
  long rc = syscall(SYS_waitid, P_PID, child, &info, WEXITED, NULL);
  if (rc != 0 || info.si_pid != child) {
    printf("BAD waitid returned %ld with si_pid %d for child %d\n", rc, info.si_pid, child);
    return -1;
  }
  return info.si_status;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *mode = argv[1];
  const char *fifo = argv[2];
  int expected = strcmp(mode, "system") == 0 ? 7 : 9;
  for (long round = 0;; round++) {
    int status;
    if (strcmp(mode, "system") == 0) {
      status = by_system(fifo);
    } else if (strcmp(mode, "waitpid") == 0) {
      status = by_waitpid(fifo);
    } else {
      status = by_raw_waitid(fifo);
    }
    if (status != expected) {
      printf("%ld BAD %s status %d\n", round, mode, status);
    } else {
      printf("%ld %s %d\n", round, mode, status);
    }
    fflush(stdout);
  }
}
