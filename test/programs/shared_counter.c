// Two children add to a counter in MAP_SHARED memory made before fork (anonymous, or a
// mapping of the file given as second argument); each also
// counts its own additions in its slot. The parent prints "<n> <total>" each tick, and BAD
// when the total disagrees with the slots (by more than the two additions in flight).
// Usage: shared_counter [interval_ms] [file]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 100;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  struct timespec fast = {0, 5 * 1000000L};
  int fd = -1;
  if (argc > 2) {
    fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return 1;
  }
  int flags = MAP_SHARED | (fd < 0 ? MAP_ANONYMOUS : 0);
  long *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (shared == MAP_FAILED) return 1;
  for (int i = 1; i <= 2; i++) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      for (;;) {
        __atomic_add_fetch(&shared[i], 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&shared[0], 1, __ATOMIC_SEQ_CST);
        nanosleep(&fast, NULL);
      }
    }
  }
  for (long count = 0;; count++) {
    long total = __atomic_load_n(&shared[0], __ATOMIC_SEQ_CST);
    long slots = __atomic_load_n(&shared[1], __ATOMIC_SEQ_CST) + shared[2];
    if (slots - total > 2 || slots < total) printf("%ld BAD total %ld slots %ld\n", count, total, slots);
    else printf("%ld %ld\n", count, total);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
