"""The page in a real headless browser (Debian's chromium + chromium-driver via Selenium).

Two people rate five movies each by searching titles, get ten picks none of them rated (the
Recommender's own ten for them), and press "not for us" once: the pick is gone, the rest move
up and one more fills the list. A name with markup in it is shown as text; a bad user id
shows the server's one-line error.

Skipped only when chromium or chromedriver is not installed (.ci/run installs them).
"""

from __future__ import annotations

import shutil

import pytest

from duorec.service import create_app
from duorec.service.server import serve_in_thread
from duorec.serving.recommender import Recommender

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver; .ci/run installs them)",
)
NAME = "<b>Ana</b>"  # markup in a name must stay text
WAIT = 30  # seconds: a loaded CI machine


@pytest.fixture(scope="module")
def url(rec: Recommender):
    with serve_in_thread(create_app(rec)) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1800",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def choose_movies(rec: Recommender, count: int, skip: set[int]) -> list[tuple[int, str]]:
    """(movieId, title) of well-known movies whose full title finds them in the page's search."""
    chosen = []
    order = sorted(range(rec.index.n_movies), key=lambda m: -rec.index.rating_counts[m])
    for movie in order:
        movie_id = int(rec.index.columns["movieId"][movie])
        title = str(rec.index.columns["title"][movie])
        if movie_id in skip or movie_id in {m for m, _ in chosen}:
            continue
        if movie_id in rec.search(title, 8)["movieId"].tolist():
            chosen.append((movie_id, title))
        if len(chosen) == count:
            return chosen
    raise AssertionError("not enough searchable movies")


def rate(driver, card, movie_id: int, title: str, rating: str) -> None:
    """Search `title` in a person's card, pick it from the results with `rating`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    search = card.find_element(By.CSS_SELECTOR, "input.search")
    search.clear()
    search.send_keys(title)
    item = f'ul.search-results li[data-movie-id="{movie_id}"]'
    waiting(driver).until(lambda d: card.find_elements(By.CSS_SELECTOR, item))
    select = card.find_element(By.CSS_SELECTOR, f"{item} select.rating")
    Select(select).select_by_value(rating)  # choosing a rating adds the movie
    rated = f'ul.rated li[data-movie-id="{movie_id}"]'
    waiting(driver).until(lambda d: card.find_elements(By.CSS_SELECTOR, rated))


def waiting(driver):
    """A wait that looks again when an element it found was redrawn meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))


def shown_picks(driver) -> list[int]:
    """The picks' movieIds as the page shows them, read in one script: the table is redrawn
    while a refill arrives, and rows found one call earlier may be gone by the next."""
    script = (
        "return Array.from(document.querySelectorAll('#picks tbody tr'), r => r.dataset.movieId)"
    )
    return [int(m) for m in driver.execute_script(script)]


def test_two_people_rate_five_movies_get_ten_picks_and_drop_one(
    browser, url: str, rec: Recommender
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(url + "/")
    waiting(browser).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    )
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
    cards = browser.find_elements(By.CSS_SELECTOR, "#people .card")
    assert len(cards) == 2  # the page starts with two people who rate movies

    first = choose_movies(rec, 5, set())
    second = choose_movies(rec, 5, {m for m, _ in first})
    ratings_a = ["5", "4.5", "4", "1", "2"]
    ratings_b = ["1", "3", "5", "4.5", "4"]
    cards[0].find_element(By.CSS_SELECTOR, "input.label").send_keys(NAME)
    for (movie_id, title), rating in zip(first, ratings_a, strict=True):
        rate(browser, cards[0], movie_id, title, rating)
    for (movie_id, title), rating in zip(second, ratings_b, strict=True):
        rate(browser, cards[1], movie_id, title, rating)

    browser.find_element(By.ID, "recommend").click()
    waiting(browser).until(lambda d: len(shown_picks(d)) == 10)
    picks = shown_picks(browser)
    rated = {m for m, _ in first} | {m for m, _ in second}
    assert not rated & set(picks), "a pick one of them rated"
    ana = rec.person(NAME, [(m, float(r)) for (m, _), r in zip(first, ratings_a, strict=True)])
    bo = rec.person(
        "person 2", [(m, float(r)) for (m, _), r in zip(second, ratings_b, strict=True)]
    )
    assert picks == rec.recommend([ana, bo], k=10)["movieId"].tolist()

    heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#picks thead th.member")]
    assert heads == [NAME, "person 2"]  # the markup shown as text
    assert not browser.find_elements(By.CSS_SELECTOR, "#picks thead b, #people b")
    first_row = browser.find_element(By.CSS_SELECTOR, "#picks tbody tr")
    assert first_row.find_element(By.CSS_SELECTOR, "td.reason").text.strip()
    assert len(first_row.find_elements(By.CSS_SELECTOR, "td.num")) == 3  # group + each

    first_row.find_element(By.CSS_SELECTOR, "button.drop").click()
    waiting(browser).until(lambda d: shown_picks(d)[:1] != picks[:1])
    waiting(browser).until(lambda d: len(shown_picks(d)) == 10)
    refilled = shown_picks(browser)
    assert picks[0] not in refilled
    assert refilled[:9] == picks[1:]  # the others move up, one new pick fills the list
    assert refilled[9] not in picks and refilled[9] not in rated
    expected = rec.recommend([ana, bo], k=10, filters={"exclude": [picks[0]]})
    assert refilled == expected["movieId"].tolist()
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None

    # a third person by an id the data set does not have: the server's one line, on the page
    browser.find_element(By.ID, "add-id").click()
    third = browser.find_elements(By.CSS_SELECTOR, "#people .card")[2]
    third.find_element(By.CSS_SELECTOR, "input.user-id").send_keys("999999")
    browser.find_element(By.ID, "recommend").click()
    error = browser.find_element(By.ID, "error")
    waiting(browser).until(lambda d: error.is_displayed())
    assert "members[2].user: unknown user id 999999" in error.text, error.text
    assert shown_picks(browser) == refilled  # the last answer stays
