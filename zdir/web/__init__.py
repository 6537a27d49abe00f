"""The web view (``zdir-web``): a read-only page over the Client API, for a browser.

Installed with the optional extra ``pip install 'zdir[web]'`` (Starlette, uvicorn,
Jinja2), so the core keeps its two run-time dependencies. The command is in
``__main__``, the routes in ``app``, the access rules in ``guard``, the bridge
from the blocking Client to the event loop in ``feed``; docs/web.md has the rest.
"""
