"""Pushes with the official Python client (prometheus_client) to the gateway given as argv[1].

Run by tests/e2e_python.rs, which scrapes the gateway afterwards and asserts on the exact
exposition lines. Every value here is fixed so the scrape is predictable, except the
`_created` series the client adds, which carry the time the metric was created.

Groups written:
  job="py/batch" (job@base64), instance="node/07" (@base64), rack="B 12/α" (@base64),
  site="Zürich" (percent-encoded, no base64): push_to_gateway (PUT) of a counter, a gauge,
  a histogram and a summary, gzip-compressed; then pushadd_to_gateway (POST) of one more
  gauge, which must leave the first four families in place.
  job="py-doomed": pushed, then delete_from_gateway, so it must be gone.
"""

import sys

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)

GATEWAY = sys.argv[1]
GROUP = {"instance": "node/07", "rack": "B 12/α", "site": "Zürich"}


def main():
    full = CollectorRegistry()
    processed = Counter("py_jobs_processed", "Jobs processed.", ["queue"], registry=full)
    processed.labels(queue="fast").inc(3)
    processed.labels(queue="slow").inc(1.5)
    last = Gauge("py_last_success_unixtime", "Last time the batch job succeeded.", registry=full)
    last.set(1700000000.5)
    duration = Histogram(
        "py_job_duration_seconds", "Time a job took.", buckets=(0.1, 1, 10), registry=full
    )
    for v in (0.05, 0.5, 5, 50):
        duration.observe(v)
    size = Summary("py_request_size_bytes", "Request sizes.", registry=full)
    size.observe(100)
    size.observe(300)
    push_to_gateway(GATEWAY, job="py/batch", grouping_key=GROUP, registry=full, compression="gzip")

    extra = CollectorRegistry()
    records = Gauge("py_batch_records", "Records in the last batch.", registry=extra)
    records.set(42)
    pushadd_to_gateway(GATEWAY, job="py/batch", grouping_key=GROUP, registry=extra)

    doomed = CollectorRegistry()
    Gauge("py_doomed", "Deleted right after the push.", registry=doomed).set(1)
    push_to_gateway(GATEWAY, job="py-doomed", registry=doomed)
    delete_from_gateway(GATEWAY, job="py-doomed")
    print("pushed")


if __name__ == "__main__":
    main()
