# Python threads sharing state: four workers add to a total under a lock and to their own
# thread-local counters, a producer and a consumer pass numbers through a queue.Queue (a
# condition variable underneath), and the main thread checks every round that the per-thread
# counters add up to the total and that the consumer received every number in order.
# Prints "total T consumed C" each round; "BAD ..." and exit 1 on any inconsistency.
# Usage: threading_state.py [interval_s]
import os
import queue
import sys
import threading
import time

interval = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
lock = threading.Lock()
state = {"total": 0, "consumed": 0, "expected": 0}
published = [0] * 4
local = threading.local()
channel = queue.Queue(maxsize=16)


def worker(index):
    local.count = 0
    while True:
        with lock:
            local.count += 1
            state["total"] += 1
            published[index] = local.count
        if local.count % 256 == 0:
            time.sleep(0.001)


def producer():
    number = 0
    while True:
        number += 1
        channel.put(number)


def consumer():
    while True:
        number = channel.get()
        if number != state["expected"] + 1:
            print(f"BAD queue {number} after {state['expected']}", flush=True)
            os._exit(1)
        state["expected"] = number
        state["consumed"] += 1


for index in range(4):
    threading.Thread(target=worker, args=(index,), daemon=True).start()
threading.Thread(target=producer, daemon=True).start()
threading.Thread(target=consumer, daemon=True).start()

while True:
    time.sleep(interval)
    with lock:
        total = state["total"]
        seen = sum(published)
    if total != seen:
        print(f"BAD total {total} sum {seen}", flush=True)
        sys.exit(1)
    print(f"total {total} consumed {state['consumed']}", flush=True)
