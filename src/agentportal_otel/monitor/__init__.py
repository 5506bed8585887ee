"""The monitoring server: a team-scoped usage API and web page over the ClickHouse traces table.

``agentportal-otel serve`` (:mod:`._serve`) runs the ASGI app of :mod:`._app` under uvicorn.
Access is by bearer token (:mod:`._auth`): an admin token reads every row, a team token only its
team's, enforced as the query layer's ``team_scope``. The page (``static/``) is plain JavaScript
over the JSON API, shipped in the wheel, with no build step and no CDN. Configuration:
:mod:`._env`. Needs the ``monitor`` extra (FastAPI, uvicorn) plus the ``clickhouse`` extra.

Importing this package imports neither FastAPI nor uvicorn nor a ClickHouse client.
"""
