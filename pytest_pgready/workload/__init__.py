"""Load generation: an out-of-process Locust runner, the PgUser base class, HdrHistogram latencies.

Nothing here imports locust or gevent at import time except `user` (loaded only inside the Locust
child process): the pytest process must never be monkey-patched by gevent.
"""
