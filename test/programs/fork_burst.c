// Forks children in a burst, a little apart, while the parent's runtime is still opening
// spare connections: every child must join the computation. Odd children stay as forked
// copies (a shell's subshell); even ones exec at once (a pipeline's commands).
// Usage: fork_burst [children]    (fork_burst child: what an exec'd child runs)
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void idle(void) {
  struct timespec delay = {0, 50 * 1000000L};
  for (;;) nanosleep(&delay, NULL);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0) idle();
  long children = argc > 1 ? atol(argv[1]) : 12;
  for (long index = 0; index < children; index++) {
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
      // Ends with the parent even if it never joined (kept across exec).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (index % 2 == 0) {
        char *args[] = {argv[0], "child", NULL};
        execv("/proc/self/exe", args);
        return 1;
      }
      idle();
    }
    // 0 to 300 µs apart: some forks find the pool full, some empty, some mid-refill.
    struct timespec gap = {0, (index % 16) * 20000L};
    nanosleep(&gap, NULL);
  }
  idle();
}
