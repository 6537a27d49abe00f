"""The benchmark cases, one module each, in the order the runner takes them.

Each module has a one-line docstring (printed as the case starts) and
``measure(procs, report, runs)``, which starts what it needs through ``procs``
(stopped by the runner when it returns) and adds its rows to ``report``.
"""

from __future__ import annotations

from . import fleet, formatting, hops, listing, liveness, million

ORDER = {"listing": listing, "formatting": formatting, "hops": hops, "liveness": liveness,
         "million": million, "fleet": fleet}
