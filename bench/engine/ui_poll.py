#!/usr/bin/python3
"""bench/engine/ui_poll.py URL RATE - GET URL RATE times a second until killed.

The UI load of bench/engine/observed.lua. On SIGTERM prints how many
requests were answered (and how many failed) and their mean latency.
"""
import signal
import sys
import time
import urllib.request

url, rate = sys.argv[1], float(sys.argv[2])
done = failed = 0
spent = 0.0


def report(*_):
    mean = spent / done * 1000 if done else 0
    print("%d requests answered, %d failed, mean %.1f ms" % (done, failed, mean), flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
period = 1.0 / rate
next_at = time.monotonic()
while True:
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
        done += 1
        spent += time.monotonic() - t0
    except Exception:
        failed += 1
    next_at += period
    pause = next_at - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    else:
        next_at = time.monotonic()
