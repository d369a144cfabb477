#!/usr/bin/python3
"""A stand-in for agate-server in test_harness.py (it ignores its flags): logs that it listens,
then waits. On SIGTERM it writes $FAKE_SERVER_LOG_ON_TERM to stderr and exits with
$FAKE_SERVER_EXIT_ON_TERM (default 0)."""

import os
import signal
import sys
import time


def on_term(*_):
    sys.stderr.write(os.environ.get("FAKE_SERVER_LOG_ON_TERM", ""))
    sys.stderr.flush()
    os._exit(int(os.environ.get("FAKE_SERVER_EXIT_ON_TERM", "0")))


signal.signal(signal.SIGTERM, on_term)
sys.stderr.write("fake agate-server: listening on 127.0.0.1:9\n")
sys.stderr.flush()
while True:
    time.sleep(1)
