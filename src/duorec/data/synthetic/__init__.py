"""Synthetic MovieLens + IMDb release with planted, learnable structure.

Why this exists: tests, CI and the default experiment need data that (a) is small, free and
instant, (b) goes through *exactly* the same readers, merge and features as the real
MovieLens and IMDb files, and (c) has a known answer, so a model that learns nothing is
caught. The generator therefore writes the real file formats byte for byte (headers, CSV
quoting, ``\\N`` nulls, zero-padded ids) including the oddities real data has (missing
links, dangling links, reused titles, ``"Title, The (Year)"`` article inversion, TV series
sharing a movie's title, titles without a year, quotes and commas in titles), and plants a
rating model whose noise-free part is recorded in ``manifest.json`` as the best achievable
RMSE.

Planted rating model (all vectorised numpy, one seed)::

    score(u, m) = mu + b_u + b_m + <p_u, q_m> + mean_{g in genres(m)} taste_u[g]
    b_m         = base_m + mean(effect of m's directors) + mean(effect of m's cast)
    rating      = clip(round_to_half_star(score + N(0, noise_sd)), 0.5, 5.0)
                  (whole stars, 1..5, for the users who only use whole stars)

Which movies a user rates: a Zipf popularity law (popularity mildly correlated with quality,
as in real data) sampled without replacement per user; how many: a heavy-tailed lognormal
with a floor of ``min_ratings_per_user`` (20, as MovieLens guarantees).

Command line, for benchmarks::

    python -m duorec.data.synthetic --size small --seed 0 --out data/synthetic/small

Modules: ``spec`` (what shapes a release), ``vocab`` (names, genres, roles), ``catalog``
(movies, titles, link states, people), ``model`` (the planted rating model), ``oracle``
(best-achievable RMSEs), ``writers`` and ``imdb_files`` (the file formats), ``release``
(``generate`` and the manifest), ``cli``.
"""

from __future__ import annotations

from duorec.data.synthetic.cli import main
from duorec.data.synthetic.release import generate
from duorec.data.synthetic.spec import SIZES, SyntheticSpec
from duorec.data.synthetic.vocab import ML_GENRES, NO_GENRES

__all__ = ["ML_GENRES", "NO_GENRES", "SIZES", "SyntheticSpec", "generate", "main"]
