// Threads blocked in system calls that a signal handler would turn into EINTR: nanosleep
// (with and without a remaining-time pointer), poll without a timeout, epoll_wait, select,
// sigtimedwait, accept, and a relative clock_nanosleep. None of them may see EINTR, and no
// sleep may end early. The main thread prints "round R" and wakes the waiters now and then
// through a pipe, a socket and a signal; each waiter prints "woke NAME" when it is woken.
// Any failure prints "BAD NAME ..." and exits 1. With "sleeps" as second argument only the
// sleepers and sigwaitinfo run (no pipe, socket or epoll descriptor: restart does not restore
// those yet). Usage: blocking_calls [interval_ms [sleeps]]
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int poll_pipe[2], epoll_pipe[2], select_pipe[2];
static int listener;
static int listen_port;

static void bad(const char *name, int error) {
  printf("BAD %s %s\n", name, strerror(error));
  fflush(stdout);
  exit(1);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void woke(const char *name) {
  printf("woke %s\n", name);
  fflush(stdout);
}

// Sleeps of 700 ms: a checkpoint lands inside most of them.
static void *sleeper(void *arg) {
  int with_remaining = arg != NULL;
  for (;;) {
    struct timespec request = {0, 700000000}, remaining;
    double start = now();
    if (nanosleep(&request, with_remaining ? &remaining : NULL) != 0) bad("nanosleep", errno);
    if (now() - start < 0.69) bad("nanosleep-early", 0);
    woke(with_remaining ? "nanosleep-remaining" : "nanosleep");
  }
}

static void *clock_sleeper(void *arg) {
  (void)arg;
  for (;;) {
    struct timespec request = {0, 600000000}, remaining;
    double start = now();
    int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &request, &remaining);
    if (rc != 0) bad("clock_nanosleep", rc);
    if (now() - start < 0.59) bad("clock_nanosleep-early", 0);
    woke("clock_nanosleep");
  }
}

static void drain(int fd) {
  char byte;
  if (read(fd, &byte, 1) != 1) bad("read", errno);
}

static void *poller(void *arg) {
  (void)arg;
  for (;;) {
    struct pollfd entry = {.fd = poll_pipe[0], .events = POLLIN};
    if (poll(&entry, 1, -1) < 0) bad("poll", errno);
    drain(poll_pipe[0]);
    woke("poll");
  }
}

static void *epoller(void *arg) {
  (void)arg;
  int epoll = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN};
  epoll_ctl(epoll, EPOLL_CTL_ADD, epoll_pipe[0], &event);
  for (;;) {
    struct epoll_event ready;
    if (epoll_wait(epoll, &ready, 1, -1) < 0) bad("epoll_wait", errno);
    drain(epoll_pipe[0]);
    woke("epoll_wait");
  }
}

static void *selecter(void *arg) {
  (void)arg;
  for (;;) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(select_pipe[0], &set);
    if (select(select_pipe[0] + 1, &set, NULL, NULL, NULL) < 0) bad("select", errno);
    drain(select_pipe[0]);
    woke("select");
  }
}

static void *waiter(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  for (;;) {
    siginfo_t info;
    if (sigwaitinfo(&set, &info) < 0) bad("sigwaitinfo", errno);
    woke("sigwaitinfo");
  }
}

static void *acceptor(void *arg) {
  (void)arg;
  for (;;) {
    int connection = accept(listener, NULL, NULL);
    if (connection < 0) bad("accept", errno);
    close(connection);
    woke("accept");
  }
}

static void poke_accept(void) {
  int client = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(listen_port)};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(client, (struct sockaddr *)&address, sizeof address) != 0) bad("connect", errno);
  close(client);
}

static void listen_loopback(void) {
  listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in address = {.sin_family = AF_INET};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listener, (struct sockaddr *)&address, sizeof address);
  socklen_t size = sizeof address;
  getsockname(listener, (struct sockaddr *)&address, &size);
  listen_port = ntohs(address.sin_port);
  listen(listener, 16);
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 100;
  int descriptors = !(argc > 2 && strcmp(argv[2], "sleeps") == 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  if (pipe(poll_pipe) || pipe(epoll_pipe) || pipe(select_pipe)) bad("pipe", errno);
  listen_loopback();
  void *(*bodies[])(void *) = {sleeper, sleeper, clock_sleeper, poller, epoller, selecter,
                               waiter, acceptor};
  void *args[] = {NULL, (void *)1, NULL, NULL, NULL, NULL, NULL, NULL};
  for (unsigned i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    int uses_descriptor = bodies[i] != sleeper && bodies[i] != clock_sleeper && bodies[i] != waiter;
    if (uses_descriptor && !descriptors) continue;
    pthread_t thread;
    pthread_create(&thread, NULL, bodies[i], args[i]);
  }
  for (long round = 1;; round++) {
    struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
    while (nanosleep(&delay, &delay) != 0) {
    }
    printf("round %ld\n", round);
    fflush(stdout);
    // The waiters are woken every tenth round only: most checkpoints find them blocked.
    if (round % 10 != 0) continue;
    kill(getpid(), SIGUSR1);
    if (!descriptors) continue;
    if (write(poll_pipe[1], "x", 1) != 1 || write(epoll_pipe[1], "x", 1) != 1 ||
        write(select_pipe[1], "x", 1) != 1)
      bad("write", errno);
    poke_accept();
  }
}
