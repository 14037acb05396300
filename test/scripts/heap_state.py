# Python with its state in the heap: a growing list and a running sum, printed each tick.
# Usage: python3 heap_state.py [interval_s]
import sys
import time

interval = float(sys.argv[1]) if len(sys.argv) > 1 else 0.02
numbers = []
total = 0
while True:
    numbers.append(len(numbers) * 7 % 1000)
    total += numbers[-1]
    if sum(numbers) != total:
        print("BAD", len(numbers), flush=True)
        sys.exit(1)
    print(len(numbers), total, flush=True)
    time.sleep(interval)
