// Maps a file MAP_PRIVATE and keeps changing one of its pages while the others must stay the
// file's, so a restart must bring back both the modified pages and the file-backed ones.
// Prints the round; exits 1 with "BAD" when a page differs from what it must hold.
// Usage: private_mapping PATH [interval_ms]
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { PAGE = 4096, PAGES = 64, CHANGED = 7 };

static uint8_t pattern(size_t offset) {
  return (uint8_t)(offset * 31 + offset / PAGE);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  long interval_ms = argc > 2 ? atol(argv[2]) : 20;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 1;
  static uint8_t content[PAGE * PAGES];
  for (size_t i = 0; i < sizeof content; i++) content[i] = pattern(i);
  if (write(fd, content, sizeof content) != (ssize_t)sizeof content) return 1;
  uint8_t *map = mmap(NULL, sizeof content, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return 1;
  close(fd);
  uint64_t *counter = (uint64_t *)(map + CHANGED * PAGE);
  *counter = 0;
  for (uint64_t round = 1;; round++) {
    *counter += 1;
    for (size_t i = 0; i < sizeof content; i++) {
      size_t page = i / PAGE;
      if (page == CHANGED && i < CHANGED * PAGE + sizeof(uint64_t)) continue;
      if (map[i] != pattern(i)) {
        printf("BAD %zu\n", i);
        return 1;
      }
    }
    printf("%llu %llu\n", (unsigned long long)round, (unsigned long long)*counter);
    fflush(stdout);
    nanosleep(&delay, NULL);
  }
}
