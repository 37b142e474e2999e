"""The public explorer site: server-rendered pages (Jinja2) of the ledger, in English and Spanish,
and the in-browser verifier (``explorer/js``, bundled into ``explorer/static/explorer.js``).

:func:`explorer.pages.router` is mounted at ``/`` by :func:`api.app.create_app`.
"""
