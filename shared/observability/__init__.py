"""What a service process tells Prometheus: its metrics (``metrics``), its HTTP requests (``http``), and the
cluster's replication as one service sees it (``replication``). Served on ``/metrics`` by ``shared.stage``."""
