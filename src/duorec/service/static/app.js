// duorec's page: people, filters, ten picks and "not for us".
// Plain DOM, no framework, no build step. Everything that came from the server or from a
// file is put on the page as text (textContent), never parsed as markup: titles, labels and reasons
// are data, not markup.
"use strict";

const state = {
  info: null,       // GET /api/info
  people: [],       // {id, kind: "picks"|"user"|"file", label, ratings: Map, file, userId}
  excluded: [],     // movieIds turned down ("not for us")
  nextId: 1,
  busy: false,
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function $(id) { return document.getElementById(id); }

function fmt(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("the service cannot be reached (" + err.message + ")");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || ("HTTP " + response.status));
  }
  return body;
}

// ------------------------------------------------------------------ people

function addPerson(kind) {
  const max = state.info ? state.info.max_members : 6;
  if (state.people.length >= max) {
    showError("A group is at most " + max + " people.");
    return null;
  }
  const person = {
    id: state.nextId++, kind, label: "", ratings: new Map(), file: null, userId: "",
  };
  state.people.push(person);
  renderPeople();
  const card = document.querySelector('[data-person="' + person.id + '"]');
  const focus = card && card.querySelector("input.search, input.user-id, input[type=file]");
  if (focus) focus.focus();
  return person;
}

function removePerson(person) {
  state.people = state.people.filter((p) => p !== person);
  renderPeople();
}

function personTitle(person, index) {
  return person.label || (person.kind === "user" && person.userId ? "user " + person.userId
    : "person " + (index + 1));
}

function renderPeople() {
  const box = $("people");
  box.replaceChildren(...state.people.map(personCard));
  const n = state.people.length;
  $("people-count").textContent = "(" + n + (n === 1 ? " person" : " people") + ")";
}

function personCard(person, index) {
  const name = el("input", {
    class: "label", type: "text", maxlength: "60", placeholder: "person " + (index + 1),
    "aria-label": "name", value: person.label,
    oninput: (e) => { person.label = e.target.value.trim(); },
  });
  const kinds = { picks: "rates movies", user: "user of the data set", file: "export file" };
  const head = el("div", { class: "card-head" }, name,
    el("span", { class: "muted kind", text: kinds[person.kind] }),
    el("button", { type: "button", class: "remove", "aria-label": "remove this person",
      text: "remove", onclick: () => removePerson(person) }));
  let body;
  if (person.kind === "user") body = userBody(person);
  else if (person.kind === "file") body = fileBody(person);
  else body = picksBody(person);
  return el("div", { class: "card", dataset: { person: String(person.id), kind: person.kind } },
    head, body);
}

function userBody(person) {
  const examples = state.info ? state.info.example_users.join(", ") : "";
  return el("label", {}, "User id ",
    el("input", {
      class: "user-id", type: "number", min: "0", step: "1", value: person.userId,
      placeholder: examples ? "e.g. " + examples : "",
      oninput: (e) => { person.userId = e.target.value; },
    }));
}

function fileBody(person) {
  const shown = el("span", { class: "muted file-name",
    text: person.file ? person.file.name : "no file chosen" });
  const limit = state.info ? " (at most " + state.info.max_file_mb + " MB)" : "";
  const input = el("input", {
    type: "file", accept: ".csv,.zip,.txt,text/csv,application/zip",
    onchange: (e) => {
      person.file = e.target.files[0] || null;
      shown.textContent = person.file ? person.file.name : "no file chosen";
      if (person.file && !person.label) person.label = person.file.name.replace(/\.[^.]*$/, "");
    },
  });
  return el("div", {}, el("label", {}, "Export" + limit + " ", input), " ", shown);
}

function ratingOptions() {
  const [low, high] = state.info ? state.info.rating_range : [0.5, 5];
  const step = state.info ? state.info.rating_step : 0.5;
  const options = [el("option", { value: "", text: "rate…" })];
  for (let v = high; v >= low - 1e-9; v -= step) {
    const text = (Math.round(v * 10) / 10).toString();
    options.push(el("option", { value: text, text: text + " ★" }));
  }
  return options;
}

function picksBody(person) {
  const need = state.info ? state.info.min_picks : 5;
  const count = el("span", { class: "count" });
  const rated = el("ul", { class: "rated" });
  const results = el("ul", { class: "search-results" });
  const renderRated = () => {
    const items = [];
    for (const [movieId, pick] of person.ratings) {
      items.push(el("li", { dataset: { movieId: String(movieId) } },
        el("span", { text: pick.title }), " ",
        el("strong", { text: pick.rating + " ★" }), " ",
        el("button", { type: "button", class: "unrate", "aria-label": "remove rating",
          text: "×", onclick: () => { person.ratings.delete(movieId); renderRated(); } })));
    }
    rated.replaceChildren(...items);
    const n = person.ratings.size;
    count.textContent = n + " rated" + (n < need ? " (rate at least " + need + ")" : " ✓");
    count.className = "count " + (n < need ? "short" : "enough");
  };
  let timer = null;
  let asked = "";
  const search = el("input", {
    class: "search", type: "search", placeholder: "search a title you have seen…",
    "aria-label": "search a title", autocomplete: "off",
    oninput: (e) => {
      clearTimeout(timer);
      const query = e.target.value.trim();
      timer = setTimeout(() => runSearch(query), 200);
    },
  });
  async function runSearch(query) {
    asked = query;
    if (!query) { results.replaceChildren(); return; }
    try {
      const found = await api("/api/search?limit=8&q=" + encodeURIComponent(query));
      if (asked !== query) return; // a newer search is under way
      results.replaceChildren(...found.movies.map((movie) => resultItem(movie)));
      if (!found.movies.length) results.append(el("li", { class: "muted", text: "no title found" }));
    } catch (err) {
      showError(err.message);
    }
  }
  function resultItem(movie) {
    const title = movie.title + (movie.year ? " (" + movie.year + ")" : "");
    const select = el("select", { class: "rating", "aria-label": "rating for " + title },
      ...ratingOptions());
    const had = person.ratings.get(movie.movieId);
    if (had) select.value = String(had.rating);
    const add = () => {
      if (!select.value) { select.focus(); return; }
      person.ratings.set(movie.movieId, { title, rating: Number(select.value) });
      renderRated();
      search.value = "";
      results.replaceChildren();
      search.focus();
    };
    select.addEventListener("change", () => { if (select.value) add(); });
    return el("li", { dataset: { movieId: String(movie.movieId) } },
      el("span", { class: "title", text: title }),
      el("span", { class: "muted", text: " " + movie.genres.join(", ") }), " ",
      select, " ",
      el("button", { type: "button", class: "add", text: "add", onclick: add }));
  }
  renderRated();
  return el("div", { class: "picks" }, el("div", { class: "search-row" }, search, " ", count),
    results, rated);
}

// ------------------------------------------------------------------ filters

function renderGenres() {
  const box = $("genres");
  const legend = box.querySelector("legend");
  const boxes = state.info.genres.map((genre) => el("label", { class: "genre" },
    el("input", { type: "checkbox", value: genre }), " " + genre));
  box.replaceChildren(legend, ...boxes);
}

function filters() {
  const out = {};
  const genres = [...document.querySelectorAll("#genres input:checked")].map((x) => x.value);
  if (genres.length) out.genres = genres;
  const year = $("min-year").value.trim();
  if (year) out.min_year = Number(year);
  const runtime = $("max-runtime").value.trim();
  if (runtime) out.max_runtime = Number(runtime);
  if (state.excluded.length) out.exclude = state.excluded.slice();
  return out;
}

// ------------------------------------------------------------------ recommend

function buildRequest() {
  const need = state.info ? state.info.min_picks : 5;
  if (state.people.length < 2) throw new Error("Add at least two people.");
  const members = [];
  const files = [];
  state.people.forEach((person, i) => {
    const label = person.label || undefined;
    const who = personTitle(person, i);
    if (person.kind === "user") {
      const id = person.userId.trim();
      if (!/^-?\d+$/.test(id)) throw new Error(who + ": enter a user id.");
      members.push({ user: Number(id), label });
    } else if (person.kind === "file") {
      if (!person.file) throw new Error(who + ": choose an export file.");
      const limit = state.info ? state.info.max_file_mb : Infinity;
      if (person.file.size > limit * 1048576) {
        throw new Error(who + ": " + person.file.name + " is " +
          (person.file.size / 1048576).toFixed(1) + " MB; the service reads at most " + limit +
          " MB (an export is usually 1-2 MB).");
      }
      const field = "person" + (i + 1);
      files.push([field, person.file]);
      members.push({ file: field, label });
    } else {
      if (person.ratings.size < need) {
        throw new Error(who + ": rate at least " + need + " movies (" + person.ratings.size +
          " so far).");
      }
      const ratings = [...person.ratings].map(([movie, pick]) => ({ movie, rating: pick.rating }));
      members.push({ ratings, label });
    }
  });
  const body = { members, k: 10, aggregate: $("aggregate").value, filters: filters() };
  const rankBy = $("rank-by").value;
  if (rankBy) body.rank_by = rankBy;
  return { body, files };
}

async function recommend() {
  if (state.busy) return;
  showError("");
  let built;
  try {
    built = buildRequest();
  } catch (err) {
    showError(err.message);
    return;
  }
  state.busy = true;
  $("recommend").disabled = true;
  $("status").textContent = "thinking…";
  try {
    let answer;
    if (built.files.length) {
      const form = new FormData();
      form.append("request", JSON.stringify(built.body));
      for (const [field, file] of built.files) form.append(field, file, file.name);
      answer = await api("/api/recommend/upload", { method: "POST", body: form });
    } else {
      answer = await api("/api/recommend", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(built.body),
      });
    }
    renderPicks(answer);
    $("status").textContent = "answered in " + Math.round(answer.took_ms) + " ms";
  } catch (err) {
    showError(whose(err.message));
    $("status").textContent = "";
  } finally {
    state.busy = false;
    $("recommend").disabled = false;
  }
}

// "members[1].ratings: ..." / "person2: ..." (an upload's field) with the person's name
function whose(message) {
  const named = (i) => (state.people[i] ? personTitle(state.people[i], i) : null);
  let match = /^members\[(\d+)\]/.exec(message);
  if (match && named(Number(match[1]))) return named(Number(match[1])) + " — " + message;
  match = /^person(\d+): /.exec(message);
  if (match && named(Number(match[1]) - 1)) return named(Number(match[1]) - 1) + " — " + message;
  return message;
}

function notForUs(movieId) {
  if (state.busy) return;
  state.excluded.push(movieId);
  recommend();
}

function renderPicks(answer) {
  const section = $("results");
  section.hidden = false;
  const names = answer.members.map((m) => m.label);
  const how = { mean: "the mean", min: "the lowest (least misery)", max: "the highest" };
  $("summary").textContent = answer.picks.length + " movies for " + names.join(", ") +
    ", none of which any of you has rated; group rating = " + (how[answer.aggregate] ||
    answer.aggregate) + " of the predicted ratings" +
    (answer.lowest ? "; least happy: " + names[answer.lowest.member] + " at " +
      fmt(answer.lowest.rating) + " for " + answer.lowest.title : "") + ".";
  $("reports").replaceChildren(...answer.members.filter((m) => m.report).map((m) =>
    el("li", { text: m.report + (m.not_found.length ? " — not found: " +
      m.not_found.slice(0, 5).join("; ") : "") })));
  const head = el("tr", {},
    el("th", { text: "#" }), el("th", { text: "movie" }), el("th", { text: "group" }),
    ...names.map((name) => el("th", { class: "member", text: name })),
    el("th", { text: "why" }), el("th", { text: "" }));
  $("picks").tHead.replaceChildren(head);
  const rows = answer.picks.map((pick) => {
    const meta = [pick.year, pick.genres.join(", "),
      pick.imdb_rating !== null ? "IMDb " + fmt(pick.imdb_rating) : null]
      .filter((x) => x !== null && x !== "").join(" · ");
    return el("tr", { dataset: { movieId: String(pick.movieId) } },
      el("td", { class: "rank", text: String(pick.rank) }),
      el("td", { class: "movie" }, el("div", { class: "title", text: pick.title }),
        el("div", { class: "muted meta", text: meta })),
      el("td", { class: "num group", text: fmt(pick.group_rating) }),
      ...pick.ratings.map((r) => el("td", {
        class: "num" + (r === pick.lowest && pick.ratings.length > 1 ? " lowest" : ""),
        text: fmt(r),
      })),
      el("td", { class: "reason", text: pick.reason }),
      el("td", {}, el("button", { type: "button", class: "drop", text: "not for us",
        title: "drop this pick and refill the list", onclick: () => notForUs(pick.movieId) })));
  });
  $("picks").tBodies[0].replaceChildren(...rows);
  const n = state.excluded.length;
  const excluded = $("excluded");
  excluded.replaceChildren();
  if (n) {
    excluded.append(n + " turned down. ", el("button", { type: "button", class: "link",
      text: "bring them back", onclick: () => { state.excluded = []; recommend(); } }));
  }
}

// ------------------------------------------------------------------ start

async function start() {
  $("add-picks").addEventListener("click", () => addPerson("picks"));
  $("add-id").addEventListener("click", () => addPerson("user"));
  $("add-file").addEventListener("click", () => addPerson("file"));
  $("recommend").addEventListener("click", recommend);
  try {
    state.info = await api("/api/info");
    $("source").textContent = state.info.dataset + ": " + state.info.movies + " movies, " +
      state.info.users + " users. " + state.info.source;
    renderGenres();
  } catch (err) {
    $("source").textContent = "";
    showError(err.message);
  }
  addPerson("picks");
  addPerson("picks");
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
