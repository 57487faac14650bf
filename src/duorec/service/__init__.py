"""The HTTP service and web page over a `duorec.serving.Recommender` (`duorec.serve` runs it).

`create_app(recommender, limits)` builds the FastAPI app: a JSON API for pairs and groups of
2-6 people (user ids, movies rated on the page, uploaded exports), a title search, `/health`,
and the page at `/` (static files, no build step, no CDN).
"""

from duorec.service.app import create_app
from duorec.service.engine import Service, ServiceOptions

__all__ = ["Service", "ServiceOptions", "create_app"]
