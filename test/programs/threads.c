// Eight workers add to per-thread (__thread) counters and, under a mutex, to a shared total;
// two threads play condition-variable ping-pong; one thread is blocked in read() on stdin.
// Each round the main thread checks that the per-thread counters add up to the total and that
// ping-pong alternates, and prints "round R total T pings P". A line on stdin is echoed as
// "read: LINE". Exits 1 with "BAD" on any inconsistency. Usage: threads [interval_ms]
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { WORKERS = 8 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t total;
static uint64_t published[WORKERS];
static __thread uint64_t mine;

static pthread_mutex_t pong_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pong_cond = PTHREAD_COND_INITIALIZER;
static int turn;
static uint64_t pings;

static void *worker(void *arg) {
  long index = (long)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    mine += 1;
    total += 1;
    published[index] = mine;
    pthread_mutex_unlock(&lock);
    if ((mine & 1023) == 0) usleep(100);
  }
  return NULL;
}

static void *player(void *arg) {
  int me = (int)(long)arg;
  for (;;) {
    pthread_mutex_lock(&pong_lock);
    while (turn != me) pthread_cond_wait(&pong_cond, &pong_lock);
    if (me == 0) pings += 1;
    turn = 1 - me;
    pthread_cond_broadcast(&pong_cond);
    pthread_mutex_unlock(&pong_lock);
  }
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  char line[256];
  for (;;) {
    ssize_t size = read(0, line, sizeof line - 1);
    if (size <= 0) return NULL;
    line[size] = 0;
    line[strcspn(line, "\n")] = 0;
    printf("read: %s\n", line);
    fflush(stdout);
  }
}

int main(int argc, char **argv) {
  long interval_ms = argc > 1 ? atol(argv[1]) : 50;
  struct timespec delay = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  pthread_t thread;
  for (long i = 0; i < WORKERS; i++) pthread_create(&thread, NULL, worker, (void *)i);
  pthread_create(&thread, NULL, player, (void *)0);
  pthread_create(&thread, NULL, player, (void *)1);
  pthread_create(&thread, NULL, reader, NULL);
  for (long round = 1;; round++) {
    nanosleep(&delay, NULL);
    pthread_mutex_lock(&lock);
    uint64_t sum = 0;
    for (int i = 0; i < WORKERS; i++) sum += published[i];
    uint64_t seen = total;
    pthread_mutex_unlock(&lock);
    if (sum != seen) {
      printf("BAD sum %llu total %llu\n", (unsigned long long)sum, (unsigned long long)seen);
      return 1;
    }
    pthread_mutex_lock(&pong_lock);
    uint64_t ping_count = pings;
    pthread_mutex_unlock(&pong_lock);
    printf("round %ld total %llu pings %llu\n", round, (unsigned long long)seen,
           (unsigned long long)ping_count);
    fflush(stdout);
  }
}
