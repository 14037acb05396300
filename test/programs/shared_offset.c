// A parent and a child append lines in turn to FILE through one descriptor the parent opened
// before fork (O_RDWR, no O_APPEND): only the offset they share puts each line after the
// other's. Turns pass through an anonymous shared page. Line n is "<n> p" (parent, even n)
// or "<n> c" (child, odd n). The parent prints "<its count> ok", or a line with BAD when
// the offset after its line is not where the lines so far end. (After a restart the file
// may hold lines written after the checkpoint: they are written again, the same.)
// Usage: shared_offset FILE [interval_ms]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

// Where line n ends: "<k> p\n" and "<k> c\n" for k up to n, one after the other.
static off_t end_of(long n) {
  off_t size = 0;
  for (long k = 0; k <= n; k++) size += snprintf(NULL, 0, "%ld", k) + 3;
  return size;
}

static void take_turns(int fd, volatile long *next, int parity, long interval_ms) {
  struct timespec poll = {0, 1000000L};
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  for (long count = 0;; count++) {
    while (*next % 2 != parity) nanosleep(&poll, NULL);
    long n = *next;
    char line[64];
    int size = snprintf(line, sizeof line, "%ld %c\n", n, parity ? 'c' : 'p');
    if (write(fd, line, size) != size) return;
    off_t at = lseek(fd, 0, SEEK_CUR);
    *next = n + 1;
    if (parity == 0) {
      if (at != end_of(n)) {
        printf("%ld BAD offset %ld, not %ld\n", count, (long)at, (long)end_of(n));
      } else {
        printf("%ld ok\n", count);
      }
      fflush(stdout);
    }
    nanosleep(&delay, NULL);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 1;
  long interval_ms = argc > 2 ? atol(argv[2]) : 50;
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 1;
  volatile long *next = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (next == MAP_FAILED) return 1;
  *next = 0;
  pid_t child = fork();
  if (child < 0) return 1;
  take_turns(fd, next, child == 0 ? 1 : 0, interval_ms);
  return 2;
}
