"""The HTTP service's JSON API through FastAPI's test client (`duorec.service`).

Every answer is checked against what `Recommender` itself returns for the same request (the
service adds no ranking of its own); every bad request is a 4xx with one line naming the
field; uploads are bounded (a zip bomb, a file over the limit, a 200 MB body) and leave
nothing behind; and 1,000 mixed good and bad requests leave the app answering with its
memory flat.
"""

from __future__ import annotations

import io
import json
import re
import select
import socket
import tempfile
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import run_in_process
from fastapi.testclient import TestClient

from duorec.data.exports import CatalogMatcher, ReadLimits, read_person
from duorec.service import ServiceOptions, create_app
from duorec.service.server import serve_in_thread
from duorec.serving.recommender import Recommender

# small limits, so the refusals are cheap to provoke
LIMITS = ReadLimits(max_file_mb=1, max_unzipped_mb=2, max_zip_members=50)


@pytest.fixture(scope="module")
def client(rec: Recommender) -> TestClient:
    with TestClient(create_app(rec, LIMITS, ServiceOptions(min_picks=5))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def catalog(rec: Recommender) -> pd.DataFrame:
    return rec.dataset.catalog.reset_index(drop=True)


def unseen_by(rec: Recommender, *users: int) -> np.ndarray:
    """movieIds none of these users rated, most rated first (what a new person might pick)."""
    seen = set()
    for user in users:
        (index,) = rec.index.user_indices(np.array([user]))
        seen |= set(
            rec.index.seen.indices[
                rec.index.seen.indptr[index] : rec.index.seen.indptr[index + 1]
            ].tolist()
        )
    order = np.argsort(-rec.index.rating_counts, kind="stable")
    return np.array([rec.index.columns["movieId"][m] for m in order if m not in seen])


def picks(movie_ids, ratings) -> list[dict]:
    return [{"movie": int(m), "rating": float(r)} for m, r in zip(movie_ids, ratings, strict=True)]


def assert_one_line_error(response, status: int, field: str) -> str:
    """A 4xx JSON answer whose one-line message starts with `field`."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "field"}, body
    assert body["field"] == field, body
    assert "\n" not in body["error"] and body["error"].startswith(f"{field}: "), body
    assert "Traceback" not in body["error"]
    return body["error"]


def assert_same_picks(answer: dict, frame: pd.DataFrame, order: list[int]) -> None:
    """The answer lists the Recommender's table: same movies, ratings, scores, reasons.

    `order[j]`: the answer's member index of the table's j-th member column.
    """
    assert [p["movieId"] for p in answer["picks"]] == frame["movieId"].tolist()
    assert [p["rank"] for p in answer["picks"]] == frame["rank"].tolist()
    group = frame["pair_rating"] if "pair_rating" in frame else frame["group_rating"]
    if "pair_rating" in frame:
        columns = ["rating_a", "rating_b"]
    else:
        columns = [f"rating_{label}" for label in frame.attrs["users"]]
    for pick, (_, row), rating in zip(answer["picks"], frame.iterrows(), group, strict=True):
        assert pick["group_rating"] == pytest.approx(float(rating), abs=1e-4)
        assert pick["score"] == pytest.approx(float(row["score"]), abs=1e-4)
        assert pick["reason"] == row["reason"]
        assert pick["title"] == row["title"]
        for j, column in enumerate(columns):
            assert pick["ratings"][order[j]] == pytest.approx(float(row[column]), abs=1e-4)
        assert pick["lowest"] == pytest.approx(min(pick["ratings"]), abs=1e-4)


# ---------------------------------------------------------------------------- answers


def test_health_info_and_page(client: TestClient, rec: Recommender) -> None:
    health = client.get("/health").json()
    assert health == {"status": "ok", "dataset": rec.name, "source": rec.source}
    info = client.get("/api/info").json()
    assert info["rating_range"] == list(rec.dataset.rating_range)
    assert info["min_picks"] == 5 and info["max_members"] == 6
    assert "Drama" in info["genres"]
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (
        '<script src="/static/app.js"' in page.text and "http" not in page.text.split("<body>")[0]
    )
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "innerHTML" not in client.get("/static/app.js").text  # data goes in as text
    schema = client.get("/openapi.json").json()
    assert {"/api/recommend", "/api/recommend/upload", "/api/search", "/health"} <= set(
        schema["paths"]
    )


def test_a_pair_of_ids_is_the_recommenders_answer(client: TestClient, rec: Recommender) -> None:
    answer = client.post("/api/recommend", json={"members": [{"user": 3}, {"user": 4}]}).json()
    frame = rec.recommend([3, 4], k=10)
    assert answer["kind"] == "pair" and len(answer["picks"]) == 10
    assert [m["label"] for m in answer["members"]] == ["user 3", "user 4"]
    assert_same_picks(answer, frame, [0, 1])


@pytest.mark.parametrize("aggregate", ["mean", "min"])
def test_a_group_of_ids_is_the_recommenders_answer(
    client: TestClient, rec: Recommender, aggregate: str
) -> None:
    ids = [5, 9, 12, 20]
    body = {"members": [{"user": u} for u in ids], "k": 7, "aggregate": aggregate}
    answer = client.post("/api/recommend", json=body).json()
    frame = rec.recommend(ids, k=7, aggregate=aggregate)
    assert answer["kind"] == "group" and answer["aggregate"] == aggregate
    assert_same_picks(answer, frame, [0, 1, 2, 3])
    seen = set()
    for u in ids:
        (i,) = rec.index.user_indices(np.array([u]))
        seen |= set(
            rec.index.columns["movieId"][
                rec.index.seen.indices[rec.index.seen.indptr[i] : rec.index.seen.indptr[i + 1]]
            ].tolist()
        )
    assert not seen & {p["movieId"] for p in answer["picks"]}
    low = answer["lowest"]
    assert low["rating"] == pytest.approx(min(min(p["ratings"]) for p in answer["picks"]))


def test_picks_from_the_page_beside_a_user_keep_the_request_order(
    client: TestClient, rec: Recommender
) -> None:
    """A person who rated five movies, then user 7: the Recommender puts the user first, the
    answer keeps the order the request gave (ratings[0] is the person's)."""
    movies = unseen_by(rec, 7)[:5]
    body = {
        "members": [{"ratings": picks(movies, [5, 4.5, 4, 2, 1]), "label": "Ana"}, {"user": 7}],
        "rank_by": "rating",
    }
    answer = client.post("/api/recommend", json=body).json()
    frame = rec.recommend(
        [rec.person("Ana", list(zip(movies.tolist(), [5, 4.5, 4, 2, 1], strict=True))), 7],
        rank_by="rating",
    )
    assert [m["label"] for m in answer["members"]] == ["Ana", "user 7"]
    assert answer["members"][0]["kind"] == "ratings" and answer["members"][0]["rated"] == 5
    assert_same_picks(answer, frame, [1, 0])  # table: user 7 (rating_a), then Ana
    assert not set(movies.tolist()) & {p["movieId"] for p in answer["picks"]}


def test_filters_and_not_for_us(client: TestClient, rec: Recommender) -> None:
    filters = {"genres": ["Drama", "Comedy", "Action"], "min_year": 1980}
    body = {"members": [{"user": 1}, {"user": 2}, {"user": 3}], "filters": filters}
    first = client.post("/api/recommend", json=body).json()
    assert len(first["picks"]) == 10
    assert_same_picks(first, rec.recommend([1, 2, 3], filters=filters), [0, 1, 2])
    dropped = first["picks"][0]["movieId"]
    body["filters"] = {**filters, "exclude": [dropped]}
    second = client.post("/api/recommend", json=body).json()
    ids = [p["movieId"] for p in second["picks"]]
    assert dropped not in ids and len(ids) == len(first["picks"])
    assert ids[:-1] == [p["movieId"] for p in first["picks"][1:]]  # the rest move up, one refills
    for pick in second["picks"]:
        assert pick["year"] >= 1980 and {"Drama", "Comedy", "Action"} & set(pick["genres"])


def test_search_is_the_recommenders(client: TestClient, rec: Recommender, catalog) -> None:
    word = str(catalog["title"].iloc[0]).split()[0]
    answer = client.get("/api/search", params={"q": word, "limit": 5}).json()
    frame = rec.search(word, 5)
    assert [m["movieId"] for m in answer["movies"]] == frame["movieId"].tolist()
    assert [m["title"] for m in answer["movies"]] == frame["title"].tolist()


# ---------------------------------------------------------------------------- uploads


def plain_csv(movie_ids, ratings) -> bytes:
    lines = ["movieId,rating"] + [f"{m},{r}" for m, r in zip(movie_ids, ratings, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def letterboxd_zip(catalog: pd.DataFrame, rows: list[int], ratings: list[float]) -> bytes:
    """A Letterboxd export zip naming catalogue titles: ratings.csv, plus watched.csv."""
    buffer = io.BytesIO()
    head = "Date,Name,Year,Letterboxd URI"
    rated = [head + ",Rating"] + [
        f'2024-01-0{i % 9 + 1},"{catalog.title[r]}",{catalog.year[r]},https://boxd.it/{r},{v}'
        for i, (r, v) in enumerate(zip(rows, ratings, strict=True))
    ]
    watched = [head] + [
        f'2024-02-01,"{catalog.title[r]}",{catalog.year[r]},https://boxd.it/{r}' for r in rows
    ]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ratings.csv", "\n".join(rated) + "\n")
        archive.writestr("watched.csv", "\n".join(watched) + "\n")
    return buffer.getvalue()


def upload(client: TestClient, request: dict, files: dict[str, tuple[str, bytes]]):
    form = {name: (filename, content) for name, (filename, content) in files.items()}
    return client.post("/api/recommend/upload", data={"request": json.dumps(request)}, files=form)


def test_two_uploaded_exports_are_the_recommenders_answer(
    client: TestClient, rec: Recommender, catalog, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the upload folder goes
    movies = unseen_by(rec, 1)
    plain = plain_csv(movies[:8], [5, 4, 4, 3, 5, 2, 1, 4.5])
    rows = rec.index.movie_lookup_array(movies[10:16]).tolist()
    zipped = letterboxd_zip(catalog, rows, [4.5, 4, 3.5, 1, 5, 2])
    request = {"members": [{"file": "a"}, {"file": "b"}, {"user": 1}], "aggregate": "min"}
    response = upload(client, request, {"a": ("ana.csv", plain), "b": ("bo export.zip", zipped)})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert list(tmp_path.iterdir()) == []  # the request's folder is gone with it

    (tmp_path / "ana.csv").write_bytes(plain)
    (tmp_path / "bo export.zip").write_bytes(zipped)
    matcher = CatalogMatcher(rec.dataset)
    ana = read_person(tmp_path / "ana.csv", matcher, "ana", LIMITS)
    bo = read_person(tmp_path / "bo export.zip", matcher, "bo export", LIMITS)
    frame = rec.recommend([ana, bo, 1], aggregate="min")
    assert [m["label"] for m in answer["members"]] == ["ana", "bo export", "user 1"]
    assert answer["members"][1]["report"].startswith("bo export (Letterboxd export, bo export.zip)")
    assert_same_picks(answer, frame, [2, 0, 1])  # table: user 1, then ana, bo
    rated = set(movies[:8].tolist()) | set(movies[10:16].tolist())
    assert not rated & {p["movieId"] for p in answer["picks"]}


def test_a_zip_bomb_is_refused_in_one_line(client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("ratings.csv", "w") as member:
            member.write(b"Date,Name,Year,Letterboxd URI,Rating\n")
            for _ in range(40):  # 40 MB of rows in ~40 KB of zip
                member.write(b"2022-11-02,Toy Story,1995,https://boxd.it/2a1m,4.5\n" * 20000)
    assert len(buffer.getvalue()) < 1 * 2**20
    request = {"members": [{"file": "bomb"}, {"user": 1}]}
    response = upload(client, request, {"bomb": ("bomb.zip", buffer.getvalue())})
    message = assert_one_line_error(response, 422, "members[0].file")
    assert (
        "ratings.csv unzips to more than 2 MB (people_limits.max_unzipped_mb=2): refused" in message
    )


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_big_bodies_are_refused(client: TestClient) -> None:
    """A file over max_file_mb, a JSON body over max_json_kb: 413 naming what."""
    request = json.dumps({"members": [{"file": "big"}, {"user": 1}]})
    big = b"movieId,rating\n" + b"1,4\n" * (2**20 // 4 + 10)  # just over 1 MB
    response = upload(client, json.loads(request), {"big": ("big.csv", big)})
    message = assert_one_line_error(response, 413, "big")
    assert (
        message
        == "big: big.csv: the upload holds more than 1 MB (people_limits.max_file_mb=1): refused"
    )

    json_body = client.post(
        "/api/recommend",
        content=b"[" + b"1," * 300_000 + b"1]",
        headers={"content-type": "application/json"},
    )
    assert_one_line_error(json_body, 413, "body")


def send_streamed(url: str, head: bytes, chunks: int, declared: int | None = None):
    """POST a multipart upload over a raw socket, `chunks` more megabytes after `head`
    (chunked transfer encoding, or a Content-Length of `declared`), reading the answer as soon
    as the server sends one: (status, JSON body, megabytes sent)."""
    host, port = url.removeprefix("http://").split(":")
    framing = (
        f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked"
    )
    lines = [
        "POST /api/recommend/upload HTTP/1.1",
        f"Host: {host}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        framing,
    ]
    megabyte = b"1,4\n" * (2**18)
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

        def piece(data: bytes) -> bytes:
            return data if declared is not None else f"{len(data):x}\r\n".encode() + data + b"\r\n"

        try:
            sock.sendall(piece(head))
            while sent < chunks and not select.select([sock], [], [], 0)[0]:
                sock.sendall(piece(megabyte))
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: read the answer
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head_text, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: *(\d+)", head_text, re.I).group(1))
        while len(body) < length:
            body += sock.recv(65536)
    return int(head_text.split()[1]), json.loads(body), sent


BOUNDARY = "xyz"


@pytest.fixture(scope="module")
def live(rec: Recommender):
    """The app on a real loopback port (uvicorn in a thread), stopped after the module."""
    with serve_in_thread(create_app(rec, LIMITS)) as url:
        yield url


def test_a_200_mb_upload_is_refused_with_memory_flat(live: str) -> None:
    """Over real HTTP: a 200 MB body that says so is refused from its Content-Length, one
    that does not is stopped at the 1 MB file limit; the server's memory (this process) does
    not grow by the upload."""
    request = json.dumps({"members": [{"file": "big"}, {"user": 1}]})
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="request"\r\n\r\n{request}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="big"; filename="big.csv"'
        "\r\n\r\nmovieId,rating\n"
    ).encode()
    before = rss_mb()
    status, body, sent = send_streamed(live, head, 200, declared=200 * 2**20 + len(head))
    assert (status, body["field"]) == (413, "body"), body
    assert "this endpoint takes at most" in body["error"] and sent < 200
    status, body, sent = send_streamed(live, head, 200)
    assert (status, body["field"]) == (413, "big"), body
    assert body["error"] == (
        "big: big.csv: the upload holds more than 1 MB (people_limits.max_file_mb=1): refused"
    )
    assert sent < 20, sent  # stopped near the limit, not read to the end
    grown = rss_mb() - before
    print(f"200 MB uploads refused; RSS grew {grown:.0f} MB")
    assert grown < 100
    assert httpx.get(f"{live}/health").status_code == 200


# ---------------------------------------------------------------------------- refusals

FIVE = [{"movie": m, "rating": 4} for m in range(1, 6)]  # movieIds of the tiny catalogue
BAD = [
    ({"members": [{"user": 1}]}, "members"),
    ({"members": [{"user": u} for u in range(1, 8)]}, "members"),
    ({"members": [{"user": 1}, {"user": 99999}]}, "members[1].user"),
    ({"members": [{"user": 1}, {"user": 1}]}, "members[1].user"),
    ({"members": [{"user": 1}, {"user": "x"}]}, "members[1].user"),
    ({"members": [{"user": 1}, {}]}, "members[1]"),
    ({"members": [{"user": 1}, {"user": 2, "ratings": FIVE}]}, "members[1]"),
    ({"members": [{"user": 1}, {"usr": 2}]}, "members[1].usr"),
    ({"members": [{"user": 1}, {"ratings": FIVE[:3]}]}, "members[1].ratings"),
    (
        {"members": [{"user": 1}, {"ratings": [*FIVE[:4], {"movie": 10**6, "rating": 4}]}]},
        "members[1].ratings",
    ),
    (
        {"members": [{"user": 1}, {"ratings": [*FIVE[:4], {"movie": 9, "rating": 11}]}]},
        "members[1].ratings",
    ),
    (
        {"members": [{"user": 1}, {"ratings": [*FIVE[:4], {"movie": 9}]}]},
        "members[1].ratings[4].rating",
    ),
    ({"members": [{"user": 1}, {"file": "a"}]}, "members[1].file"),
    ({"members": [{"user": 1}, {"user": 2}], "k": 0}, "k"),
    ({"members": [{"user": 1}, {"user": 2}], "k": "ten"}, "k"),
    ({"members": [{"user": 1}, {"user": 2}], "aggregate": "median"}, "aggregate"),
    ({"members": [{"user": 1}, {"user": 2}], "rank_by": "fun"}, "rank_by"),
    ({"members": [{"user": 1}, {"user": 2}], "filters": {"genres": ["Nope"]}}, "filters.genres"),
    ({"members": [{"user": 1}, {"user": 2}], "filters": {"exclude": [10**6]}}, "filters.exclude"),
    ({"members": [{"user": 1}, {"user": 2}], "filters": {"min_year": "new"}}, "filters.min_year"),
    ({"members": [{"user": 1}, {"user": 2}], "filters": {"min_year": 2200}}, "filters.min_year"),
    ({"members": [{"user": 1}, {"user": 2}], "filters": {"colour": 1}}, "filters.colour"),
    ({"members": [{"user": 1}, {"user": 2}], "agregate": "min"}, "agregate"),
    ({"users": [1, 2]}, "members"),
]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f for _, f in BAD])
def test_a_bad_request_is_a_4xx_naming_the_field(
    client: TestClient, body: dict, field: str
) -> None:
    assert_one_line_error(client.post("/api/recommend", json=body), 422, field)


def test_other_refusals_name_their_field(client: TestClient) -> None:
    assert_one_line_error(client.get("/api/search", params={"q": ""}), 422, "q")
    assert_one_line_error(client.get("/api/search", params={"q": "a", "limit": 500}), 422, "limit")
    assert_one_line_error(client.get("/api/search"), 422, "q")
    assert_one_line_error(client.get("/nowhere"), 404, "path")
    assert_one_line_error(client.delete("/health"), 405, "method")
    not_json = client.post(
        "/api/recommend", content=b"{", headers={"content-type": "application/json"}
    )
    assert_one_line_error(not_json, 422, "body")
    form = {"members": [{"file": "a"}, {"user": 1}]}
    assert_one_line_error(upload(client, form, {"b": ("b.csv", b"x")}), 422, "b")
    form = {"members": [{"file": "a"}, {"user": 1}]}
    no_file = client.post(
        "/api/recommend/upload", files={"request": (None, json.dumps(form).encode())}
    )
    assert_one_line_error(no_file, 422, "members[0].file")
    assert_one_line_error(
        upload(client, {"members": [{"user": 2}, {"user": 1}]}, {"a": ("a.csv", b"x")}), 422, "a"
    )
    assert_one_line_error(
        upload(client, form, {"a": ("a.csv", b"no,header\n1,2\n")}), 422, "members[0].file"
    )
    bad_json = client.post(
        "/api/recommend/upload", data={"request": "{"}, files={"a": ("a.csv", b"x")}
    )
    assert_one_line_error(bad_json, 422, "request")
    wrong = upload(
        client, {"members": [{"file": "a"}, {"user": 1}], "k": -1}, {"a": ("a.csv", b"x")}
    )
    assert_one_line_error(wrong, 422, "request.k")
    plain = client.post("/api/recommend/upload", json={"members": []})
    assert_one_line_error(plain, 415, "body")
    garbage = client.post(
        "/api/recommend/upload",
        content=b"--b\r\nnonsense",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert garbage.status_code in (400, 422) and "\n" not in garbage.json()["error"]


def test_a_thousand_mixed_requests_leave_it_answering_with_memory_flat(
    client: TestClient, rec: Recommender
) -> None:
    """Good and bad requests interleaved: every good one answered (its picks equal the first
    answer to the same request), every bad one a 4xx with one line, RSS flat."""
    movies = unseen_by(rec, 8)[:5]
    good = [
        ("post", "/api/recommend", {"members": [{"user": 3}, {"user": 4}]}),
        (
            "post",
            "/api/recommend",
            {"members": [{"user": u} for u in (5, 6, 7, 8)], "aggregate": "min"},
        ),
        (
            "post",
            "/api/recommend",
            {"members": [{"ratings": picks(movies, [5, 4, 3, 2, 1])}, {"user": 8}]},
        ),
        ("get", "/api/search?q=a&limit=5", None),
    ]
    bad = [("post", "/api/recommend", body) for body, _ in BAD] + [
        ("get", "/api/search?q=", None),
        ("get", "/nowhere", None),
    ]
    first = {i: client.request(m.upper(), p, json=b).json() for i, (m, p, b) in enumerate(good)}

    def run(n: int) -> tuple[int, int]:
        answered = refused = 0
        for i in range(n):
            if i % 2 == 0:
                j = (i // 2) % len(good)
                method, path, body = good[j]
                response = client.request(method.upper(), path, json=body)
                assert response.status_code == 200, response.text
                got, want = response.json(), first[j]
                key = "picks" if "picks" in got else "movies"
                assert [x["movieId"] for x in got[key]] == [x["movieId"] for x in want[key]]
                answered += 1
            else:
                method, path, body = bad[(i // 2) % len(bad)]
                response = client.request(method.upper(), path, json=body)
                assert 400 <= response.status_code < 500, response.text
                assert "\n" not in response.json()["error"]
                refused += 1
        return answered, refused

    run(100)  # warm: lazily built parts, allocator pools
    before = rss_mb()
    answered, refused = run(1000)
    after = rss_mb()
    assert (answered, refused) == (500, 500)
    assert client.get("/health").status_code == 200
    print(f"1,000 mixed requests: RSS {before:.0f} -> {after:.0f} MB")
    assert after - before < 30, (before, after)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("port=70000", "port=70000 is not allowed: expected an integer in 0..65535"),
        ("threads=abc", "threads='abc' is not allowed"),
        ("people_limits.max_file_mb=0", "people_limits.max_file_mb=0 is not allowed"),
        ("service.min_picks=0", "service.min_picks=0 is not allowed"),
    ],
)
def test_bad_settings_are_one_line_before_loading(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, override: str, message: str
) -> None:
    """`python -m duorec.serve` refuses a bad setting in one line, before a model is looked
    for (there is none under tmp_path)."""
    proc = run_in_process(capsys, "serve", tmp_path, tmp_path / "cache", override)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("duorec.serve: error: "), proc.stderr
    assert message in lines[0]
