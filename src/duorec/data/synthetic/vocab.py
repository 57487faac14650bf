"""Vocabularies and constants the synthetic release draws from.

Why a module of its own: the names, genres and roles are the part of the generator a reader
checks against the real releases (MovieLens' alphabetical genres, IMDb's role names), so they
sit together, apart from the code that samples from them.
"""

from __future__ import annotations

import numpy as np

#: MovieLens genre vocabulary, alphabetical: MovieLens writes a movie's genres in this order.
ML_GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"
# Rough share of real MovieLens movies carrying each genre: drives Gumbel top-k genre draws.
# fmt: off
ML_GENRE_WEIGHT = np.array(
    [0.13, 0.09, 0.05, 0.05, 0.35, 0.11, 0.07, 0.45, 0.06, 0.005, 0.11, 0.003, 0.02, 0.06,
     0.15, 0.07, 0.17, 0.03, 0.02]
)
# fmt: on
# Population-level genre effect on ratings (Film-Noir and documentaries are rated higher,
# horror lower, as in MovieLens); each user's taste is drawn around it.
# fmt: off
ML_GENRE_MEAN_EFFECT = np.array(
    [-0.05, 0.0, 0.1, -0.15, -0.1, 0.05, 0.2, 0.1, -0.05, 0.3, -0.3, 0.05, 0.0, 0.05, -0.05,
     0.0, -0.05, 0.2, 0.05]
)
# fmt: on
# MovieLens genre -> IMDb genre (IMAX has no IMDb genre; Children is Family there).
ML_TO_IMDB_GENRE = {g: g for g in ML_GENRES} | {"Children": "Family", "IMAX": ""}
IMDB_ONLY_GENRES = ("Biography", "History", "Music", "Sport")
IMDB_EXTRA_GENRES = (
    "Action", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Documentary", "Drama",
    "Family", "Fantasy", "Game-Show", "History", "Horror", "Music", "Mystery", "News",
    "Reality-TV", "Romance", "Sci-Fi", "Short", "Sport", "Talk-Show", "Thriller", "War",
)  # fmt: skip

WORDS = (
    "Night Day River Stone Fire Water Dark Light Blue Red Black White Golden Silver Iron Glass "
    "Winter Summer Autumn Spring Storm Rain Snow Wind Sun Moon Star Sky Sea Ocean Island Mountain "
    "Valley Forest Desert City Town Road Street House Garden Bridge Tower Castle Kingdom Empire "
    "Heart Soul Mind Dream Shadow Ghost Angel Devil King Queen Prince Princess Knight Soldier "
    "Hunter Thief Killer Stranger Lover Friend Enemy Brother Sister Mother Father Son Daughter "
    "Child Man Woman Girl Boy Wolf Tiger Lion Eagle Raven Dragon Horse Dog Cat Bird Snake Fox "
    "Last First Lost Hidden Secret Silent Broken Wild Quiet Lonely Strange Bright Deep High Long "
    "Little Big Great Old New Young Cold Hot Sweet Bitter Final Eternal Endless Dangerous Deadly "
    "Midnight Morning Evening Twilight Dawn Sunset Echo Memory Promise Journey Escape Return "
    "Revenge Justice Honor Glory Freedom Destiny Fortune Mercy Paradise Heaven Hell Time Money "
    "Blood Bone Steel Velvet Crimson Scarlet Emerald Diamond Crystal Pearl Thunder Lightning "
    "Harbor Station Hotel Palace Circus Carnival Theater Machine Robot Planet Galaxy Signal Code "
    "Game Play Dance Song Music Story Tale Letter Book Map Key Door Window Mirror Clock Train "
    "Ship Plane Car Highway Border Frontier Edge Line Circle Point Zero Paper Smoke Ash Dust "
    "Gold Salt Honey Wine Coffee Sugar Cherry Rose Lily Orchid Violet Summit Canyon Prairie"
).split()
ALT_WORDS = (
    "Rêve Nuit Cœur Ciel Été Hiver Fleuve Étoile Lumière Ombre Mère Père Fille Garçon Chemin "
    "Traum Nacht Himmel Sommer Reise Liebe Sonne Mond Noche Cielo Corazón Sueño Camino Vida "
    "Sogno Notte Cuore Estate Strada Amore Mar Tierra Fuego Agua"
).split()
ARTICLES = ("The", "A", "An")
ALT_ARTICLES = ("La", "Le", "Les", "El", "Das", "Il")
FIRST_NAMES = (
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony "
    "Betty Mark Margaret Donald Sandra Steven Ashley Paul Kimberly Andrew Emily Joshua Donna "
    "Kenneth Michelle Kevin Dorothy Brian Carol George Amanda Edward Melissa Ronald Deborah "
    "Timothy Stephanie Jason Rebecca Jeffrey Sharon Ryan Laura Jacob Cynthia Gary Kathleen "
    "Nicholas Amy Eric Shirley Jonathan Angela Stephen Helen Larry Anna Justin Brenda Scott "
    "Pamela Brandon Nicole Frank Emma Benjamin Samantha Gregory Katherine Samuel Christine "
    "Raymond Debra Patrick Rachel Alexander Catherine Jack Carolyn Dennis Janet Jerry Ruth"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook "
    "Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward "
    "Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez"
).split()


RATING_MIN, RATING_MAX = 0.5, 5.0
TS_START = 820_454_400  # 1996-01-01: MovieLens ratings start in 1995/96
TS_END = 1_696_118_400  # 2023-10-01: the ml-32m snapshot ends in late 2023
YEAR_SECONDS = 31_556_952
CHUNK = 1 << 20  # rows per vectorised chunk: bounds peak memory at ml32m scale


# Link state of each MovieLens movie (how it is, or is not, connected to IMDb).
LINK_OK, NO_ROW_IN_IMDB, NO_ROW_ABSENT, EMPTY_IN_IMDB, EMPTY_ABSENT = 0, 1, 2, 3, 4
DANGLING_IN_IMDB, DANGLING_ABSENT = 5, 6

# Principal roles: pool share of people, principals category name.
ROLES = ("director", "writer", "actor", "actress", "producer", "composer")
ROLE_SHARE = np.array([0.12, 0.18, 0.33, 0.27, 0.06, 0.04])
DIRECTOR, WRITER, ACTOR, ACTRESS, PRODUCER, COMPOSER = range(6)
PROFESSIONS = (
    ("director", "director,writer", "director,producer,writer"),
    ("writer", "writer,producer", "writer,miscellaneous"),
    ("actor", "actor,soundtrack", "actor,director"),
    ("actress", "actress,producer", "actress,soundtrack"),
    ("producer", "producer,executive", "producer,writer"),
    ("composer", "composer,music_department", "music_department,composer"),
)
WRITER_JOBS = ("screenplay", "novel", "story", "written by", "characters")
PRODUCER_JOBS = ("producer", "executive producer", "co-producer")
