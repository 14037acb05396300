// Built statically (see build.zig): dmtcp must refuse it with a clear message.
#include <stdio.h>

int main(void) {
  puts("hello");
  return 0;
}
