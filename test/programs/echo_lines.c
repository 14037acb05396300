// Copies its input to its output line by line, flushing each line: /bin/cat for the
// architectures whose /bin/cat this host does not have. Usage: echo_lines
#include <stdio.h>

int main(void) {
  char line[4096];
  while (fgets(line, sizeof line, stdin) != NULL) {
    fputs(line, stdout);
    fflush(stdout);
  }
  return 0;
}
