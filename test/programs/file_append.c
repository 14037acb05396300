// Appends a numbered line to a file through one descriptor, then re-reads the whole file through
// the same descriptor and checks every line, so a descriptor restored at the wrong offset or with
// the wrong flags is caught. Prints the line number; exits 1 with "BAD" on a mismatch.
// Usage: file_append PATH [interval_ms]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int verify(int fd, long lines) {
  static char buffer[1 << 20];
  off_t end = lseek(fd, 0, SEEK_CUR);
  ssize_t size = pread(fd, buffer, sizeof buffer - 1, 0);
  if (size < 0 || size < end) return 0;
  buffer[end] = 0;
  char *cursor = buffer;
  for (long line = 1; line <= lines; line++) {
    char expected[32];
    int length = snprintf(expected, sizeof expected, "line %ld\n", line);
    if (strncmp(cursor, expected, (size_t)length) != 0) return 0;
    cursor += length;
  }
  return *cursor == 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  long interval_ms = argc > 2 ? atol(argv[2]) : 20;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 1;
  for (long line = 1;; line++) {
    char text[32];
    int length = snprintf(text, sizeof text, "line %ld\n", line);
    if (write(fd, text, (size_t)length) != length) return 1;
    if (!verify(fd, line)) {
      printf("BAD %ld\n", line);
      return 1;
    }
    printf("%ld\n", line);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
