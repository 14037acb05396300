// An event loop on epoll: a 20 ms timerfd drives it; every tick it writes a byte to a pipe,
// adds 1 to an eventfd and sends itself SIGUSR1 (blocked, taken through a signalfd); epoll
// reports all four. Another eventfd holds 42 unread, checked and put back each tick. Prints
// "<round> ticks T bytes B events E signals S" every 5 ticks, and BAD when the counts
// disagree, a call fails, or the held count is not 42.
// Usage: events [tick_ms]
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int watch(int epoll, int fd) {
  struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
  return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

int main(int argc, char **argv) {
  long tick_ms = argc > 1 ? atol(argv[1]) : 20;
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) return 1;
  int counter = eventfd(0, EFD_NONBLOCK);
  int held = eventfd(42, EFD_NONBLOCK | EFD_CLOEXEC);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int signals = signalfd(-1, &mask, SFD_NONBLOCK);
  int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec spec = {{0, tick_ms * 1000000}, {0, tick_ms * 1000000}};
  int epoll = epoll_create1(0);
  if (timerfd_settime(timer, 0, &spec, NULL) != 0 || watch(epoll, timer) || watch(epoll, counter) ||
      watch(epoll, signals) || watch(epoll, pipe_ends[0]))
    return 1;
  long ticks = 0, bytes = 0, events = 0, taken = 0, round = 0;
  for (;;) {
    struct epoll_event ready[8];
    int n = epoll_wait(epoll, ready, 8, 5000);
    if (n <= 0) {
      printf("%ld BAD epoll_wait %d\n", round, n);
      fflush(stdout);
      return 1;
    }
    for (int i = 0; i < n; i++) {
      int fd = ready[i].data.fd;
      uint64_t value = 0;
      if (fd == timer && read(timer, &value, 8) == 8) {
        for (uint64_t t = 0; t < value; t++) {
          ticks += 1;
          char byte = 'x';
          uint64_t one = 1;
          if (write(pipe_ends[1], &byte, 1) != 1 || write(counter, &one, 8) != 8) return 1;
          kill(getpid(), SIGUSR1);
        }
      } else if (fd == counter && read(counter, &value, 8) == 8) {
        events += (long)value;
      } else if (fd == pipe_ends[0]) {
        char buffer[64];
        ssize_t got = read(pipe_ends[0], buffer, sizeof buffer);
        if (got > 0) bytes += got;
      } else if (fd == signals) {
        struct signalfd_siginfo info;
        while (read(signals, &info, sizeof info) == sizeof info) taken += 1;
      }
    }
    if (ticks >= (round + 1) * 5 && bytes == ticks && events == ticks) {
      uint64_t value = 0;
      int held_ok = read(held, &value, 8) == 8 && value == 42 && write(held, &value, 8) == 8;
      // Standard signals coalesce: at most one per tick, at least one per round.
      const char *verdict = held_ok && taken <= ticks && taken > round ? "ok" : "BAD";
      printf("%ld ticks %ld bytes %ld events %ld signals %ld %s\n", round, ticks, bytes, events,
             taken, verdict);
      fflush(stdout);
      round += 1;
    }
  }
}
