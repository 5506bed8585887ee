"""Local demo helpers: a database-free ``custom_auth`` and a harness that runs a real LiteLLM proxy.

Nothing here is needed in production. ``agentportal_otel.demo.auth`` stands in for LiteLLM's
database-backed virtual keys (production creates keys with ``/key/generate`` and
``metadata: {"project": ...}``), and ``agentportal_otel.demo._proxy`` starts a throw-away proxy
process for the demo, the tests and the benchmarks. Importing this package does nothing.
"""
