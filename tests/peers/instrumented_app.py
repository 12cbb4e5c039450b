"""A small app instrumented with the official Python client, as a scrape target.

Usage: instrumented_app.py PORT

Serves /metrics with a counter, a gauge, a histogram, a summary, an info
metric and an enum, with labels, and keeps the values changing so that
consecutive scrapes differ. The client negotiates OpenMetrics or the text
format from the scraper's Accept header, which is what the tests exercise.
"""

import sys
import time

from prometheus_client import Counter, Enum, Gauge, Histogram, Info, Summary, start_http_server

REQUESTS = Counter("app_requests", "Requests handled.", ["method", "code"])
TEMPERATURE = Gauge("app_temperature_celsius", "Current temperature.", ["room"])
LATENCY = Histogram("app_request_duration_seconds", "Request latency.", buckets=(0.01, 0.1, 1.0))
SIZE = Summary("app_response_size_bytes", "Response sizes.")
BUILD = Info("app_build", "Build information.")
STATE = Enum("app_state", "Lifecycle state.", states=["starting", "running", "stopping"])


def main() -> None:
    port = int(sys.argv[1])
    BUILD.info({"version": "1.2.3", "commit": "abc"})
    STATE.state("running")
    start_http_server(port, addr="127.0.0.1")
    tick = 0
    while True:
        tick += 1
        REQUESTS.labels("GET", "200").inc()
        if tick % 3 == 0:
            REQUESTS.labels("POST", "500").inc()
        TEMPERATURE.labels("kitchen").set(20 + tick % 5)
        TEMPERATURE.labels("hall").set(18.5)
        LATENCY.observe(0.05 * (tick % 4))
        SIZE.observe(100 + tick)
        time.sleep(0.2)


if __name__ == "__main__":
    main()
