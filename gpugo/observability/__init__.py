"""What gpugo tells its operators about itself (``GET /metrics``, Prometheus' text format).

``metrics`` defines every series (docs/observability.md lists them); ``http`` counts
requests by route template; ``endpoint`` serves the scrape. Nothing here ever puts user
data (ids, e-mails, paths with ids, hostnames) in a label value.

Several processes on one port (``gpugo serve --workers N``): the parent sets
``PROMETHEUS_MULTIPROC_DIR`` to a fresh, empty directory before any worker imports
gpugo; each process then writes its values there and a scrape, whichever process
answers it, sums them (prometheus_client's multiprocess mode).
"""
