"""What shapes a synthetic release: :class:`SyntheticSpec` and the named presets :data:`SIZES`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that shapes a synthetic release; ``generate(spec, seed)`` is a pure function.

    Defaults are calibrated (on ``small``) so that a global-mean predictor scores an
    individual RMSE near 1.0 and the planted noise-free score about 0.55, like MovieLens where
    global mean ~1.04 and good models ~0.85: learnable, but far from trivial.
    """

    n_users: int
    n_movies: int
    n_ratings: int
    min_ratings_per_user: int = 20  # MovieLens only ships users with >= 20 ratings
    max_user_fraction: float = 0.5  # cap on one user's share of the catalogue
    activity_sigma: float = 1.4  # lognormal sd of user activity: heavy tail as in MovieLens
    zipf_exponent: float = 1.3  # movie popularity ~ (rank + offset) ** -exponent
    zipf_offset: float = 100.0  # flattens the head so the top movie reaches ~50% of users
    popularity_quality_corr: float = 0.3  # good movies are watched more (real data does this)
    latent_dim: int = 8
    factor_sd: float = 0.42  # per-dimension sd of user and movie factors
    global_mean: float = 3.53  # mean planted score over the written ratings (ML-32M: 3.54)
    user_bias_sd: float = 0.45
    movie_bias_sd: float = 0.3  # the part of a movie's bias not explained by its people
    genre_taste_sd: float = 0.35  # per-user, per-genre taste around the genre's mean effect
    director_effect_sd: float = 0.45  # each director's quality effect
    cast_effect_sd: float = 0.45  # each actor's quality effect (a movie gets the cast mean)
    noise_sd: float = 0.5
    whole_star_user_fraction: float = 0.25  # users who never give half stars (pre-2003 UI)
    n_people: int | None = None  # default: 3 per catalogue title
    n_oracle_pairs: int = 200_000  # seeded co-rater pairs sampled for the pair oracle
    # IMDb side and oddities -------------------------------------------------------------
    frac_extra_imdb_titles: float = 0.3  # IMDb titles MovieLens does not have
    frac_tv_series_clash: float = 0.03  # tvSeries with the same title as a movie
    frac_title_reuse: float = 0.03  # remakes: same title, different year
    frac_article: float = 0.15  # "The X" in IMDb, "X, The (Year)" in MovieLens
    frac_alt_title: float = 0.03  # "X (Alt Title) (Year)"; IMDb originalTitle differs
    frac_comma_title: float = 0.02  # commas inside the name itself
    frac_quote_title: float = 0.005  # double quotes inside the name (CSV-escaped)
    frac_no_year: float = 0.005  # MovieLens title without "(Year)"
    frac_year_mismatch: float = 0.02  # IMDb startYear one off MovieLens' year
    frac_no_link_row: float = 0.02  # movie missing from links.csv
    frac_empty_imdb_id: float = 0.01  # links row with an empty imdbId
    frac_dangling_link: float = 0.02  # imdbId whose tconst is not in title.basics
    frac_missing_tmdb: float = 0.01  # empty tmdbId
    frac_no_genres: float = 0.01  # "(no genres listed)"

    def __post_init__(self) -> None:
        """Reject impossible specs now, not after minutes of generation."""
        if min(self.n_users, self.n_movies, self.n_ratings, self.latent_dim) < 1:
            raise ValueError(f"sizes must be positive: {self}")
        lo = self.n_users * self.min_ratings_per_user
        cap = self.user_cap
        if cap < self.min_ratings_per_user:
            raise ValueError(
                f"n_movies={self.n_movies} * max_user_fraction={self.max_user_fraction} < "
                f"min_ratings_per_user={self.min_ratings_per_user}"
            )
        if not lo <= self.n_ratings <= self.n_users * cap:
            raise ValueError(
                f"n_ratings={self.n_ratings} must lie in [{lo}, {self.n_users * cap}] "
                f"(n_users * min_ratings_per_user, n_users * per-user cap)"
            )
        if self.noise_sd < 0:
            raise ValueError("noise_sd must be >= 0")

    @property
    def user_cap(self) -> int:
        """Most ratings one user may have: a real user never rates the whole catalogue."""
        return max(self.min_ratings_per_user, int(self.max_user_fraction * self.n_movies))

    @property
    def people(self) -> int:
        """Number of IMDb people: enough that directors and actors recur across movies."""
        return self.n_people if self.n_people is not None else 3 * self.n_movies

    @classmethod
    def from_size(cls, name: str, **overrides: Any) -> SyntheticSpec:
        """A named preset from :data:`SIZES`, with any field overridden by keyword."""
        if name not in SIZES:
            raise ValueError(f"unknown synthetic size {name!r}; choose from {sorted(SIZES)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - fields
        if unknown:
            raise ValueError(f"unknown SyntheticSpec fields: {sorted(unknown)}")
        return cls(**(SIZES[name] | overrides))


#: Named presets. ``small`` is the project's default data set (ml-latest-small's shape);
#: ``ml32m`` matches MovieLens-32M's scale for throughput and memory benchmarks.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n_users": 50, "n_movies": 120, "n_ratings": 3_000, "zipf_offset": 10.0,
             "max_user_fraction": 0.7, "n_oracle_pairs": 20_000},
    "small": {"n_users": 600, "n_movies": 4_000, "n_ratings": 100_000},
    "medium": {"n_users": 10_000, "n_movies": 20_000, "n_ratings": 2_000_000,
               "zipf_exponent": 1.5, "zipf_offset": 150.0},
    "ml32m": {"n_users": 200_000, "n_movies": 87_000, "n_ratings": 32_000_000,
              "zipf_exponent": 1.8, "zipf_offset": 250.0, "n_people": 350_000},
}  # fmt: skip
