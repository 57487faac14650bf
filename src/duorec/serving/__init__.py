"""Recommendations for pairs and groups, behind one object: `Recommender`.

* `recommender`: the door every caller uses (command line, HTTP service, notebooks);
* `scores`: the model's ranking keys and the ratings shown beside them;
* `index`: the data set side (who has seen what, catalogue columns, filters, title search);
* `requests`: every check of a request, before any model is touched;
* `frames`: the result tables' columns.
"""

from duorec.serving.recommender import NewPerson, Recommender

__all__ = ["NewPerson", "Recommender"]
