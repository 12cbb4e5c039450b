"""Pushes metrics to an OTLP/HTTP endpoint with the OpenTelemetry Python SDK.

Usage: otlp_push.py ENDPOINT MODE

ENDPOINT is the full metrics URL (.../api/v1/otlp/v1/metrics). MODE is
"cumulative" (the SDK's default temporality: one export of a counter, an
up-down counter, an explicit-bucket histogram, an exponential histogram and a
gauge) or "delta" (a counter with delta temporality, exported twice: 3, then
4). The values are fixed; the Rust test knows them. Prints "exported N" with
the number of successful exports and exits 1 if any export failed.
"""

import sys

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource


class CountingExporter(OTLPMetricExporter):
    """Counts the exports the endpoint accepted."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.succeeded = 0
        self.failed = 0

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result == MetricExportResult.SUCCESS:
            self.succeeded += 1
        else:
            self.failed += 1
        return result


def main():
    endpoint, mode = sys.argv[1], sys.argv[2]
    temporality = {Counter: AggregationTemporality.DELTA} if mode == "delta" else {}
    exporter = CountingExporter(endpoint=endpoint, preferred_temporality=temporality)
    # A long interval: exports happen only on the explicit flushes below.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create(
        {
            "service.name": "shop",
            "service.namespace": "prod",
            "service.instance.id": "i-1",
            "deployment.environment": "test",
            "host.name": "box",
        }
    )
    views = [
        View(
            instrument_name="request.duration",
            aggregation=ExplicitBucketHistogramAggregation([0.1, 0.5, 1.0]),
        ),
        View(
            instrument_name="payload.size",
            aggregation=ExponentialBucketHistogramAggregation(max_size=20),
        ),
    ]
    provider = MeterProvider(resource=resource, metric_readers=[reader], views=views)
    meter = provider.get_meter("shop.meter", "1.2.3")

    requests = meter.create_counter(
        "http.requests", unit="{request}", description="Requests served."
    )
    if mode == "delta":
        requests.add(3, {"http.method": "GET"})
        provider.force_flush()
        requests.add(4, {"http.method": "GET"})
        provider.force_flush()
    else:
        requests.add(5, {"http.method": "GET"})
        requests.add(2, {"http.method": "POST"})
        queue = meter.create_up_down_counter(
            "queue.items", unit="{item}", description="Items queued."
        )
        queue.add(10)
        queue.add(-3)
        duration = meter.create_histogram(
            "request.duration", unit="s", description="Request latency."
        )
        for value in (0.05, 0.2, 0.7, 3.0):
            duration.record(value, {"route": "/a"})
        size = meter.create_histogram(
            "payload.size", unit="By", description="Payload sizes."
        )
        for value in (1, 3, 3, 100, 1000):
            size.record(value)
        cpu = meter.create_gauge("cpu.utilization", unit="1", description="CPU in use.")
        cpu.set(0.25)
        provider.force_flush()
    provider.shutdown()
    print(f"exported {exporter.succeeded}")
    sys.exit(1 if exporter.failed else 0)


if __name__ == "__main__":
    main()
