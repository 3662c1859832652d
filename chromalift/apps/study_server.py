"""`colorize study --serve`: the study's page, one image at a time, "natural" or "not natural".

    GET  /                  the page (keyboard: left arrow = natural, right arrow = not natural)
    GET  /api/next          ?participant=ID -> the participant's next image {participant, image, url, token,
                            done, total}, or {participant, finished: true}; without an ID a new anonymous one
                            is made (ids are signed by the server: a made-up one gets 403)
    POST /api/vote          {participant, image, token, vote: natural|not_natural, response_ms} (JSON only)
                            -> {ok: true}, written to votes.csv before the answer; 403 for an image that was
                            not served to that participant (its token), 409 if they already judged the photo
    GET  /images/ID.jpg     an image of the study (the only files served)

Several participants may vote at once. Each sees every photo once, in their own order, and for each photo
the version (real, grey, a model) with the fewest votes so far, so the sources stay balanced. What was
seen is rebuilt from votes.csv when the server starts again.
"""

import hashlib
import hmac
import json
import os
import random
import re
import secrets
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from chromalift.apps.study import VOTES, Item, Study, StudyError, VoteLog

PAGE = Path(__file__).parents[1] / "assets" / "study.html"
PARTICIPANT = re.compile(r"^[0-9a-f]{16}$")
MAX_RESPONSE_MS = 3_600_000


class VoteRefused(StudyError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Ballot:
    """Who sees which image next, and the votes; thread-safe, usable without a web server."""

    def __init__(self, study: Study):
        self.study, self.log = study, VoteLog(study.votes_path)
        self.items = study.by_id()
        self.versions: dict[str, list[Item]] = defaultdict(list)
        for item in study.items:
            self.versions[item.photo].append(item)
        self.seen: dict[str, set[str]] = defaultdict(set)           # participant -> photos judged
        self.by_source: dict[str, Counter] = defaultdict(Counter)   # participant -> votes per source
        self.count: Counter = Counter()                              # image -> votes and open assignments
        self.pending: dict[str, str] = {}                            # participant -> image shown, not yet judged
        self.secret = _secret(study.folder)                          # signs participant ids and served images
        self._lock = threading.Lock()
        for row in self.log.rows():
            if row["image"] in self.items:
                self._record(row["participant"], self.items[row["image"]])

    def _record(self, participant: str, item: Item) -> None:
        self.seen[participant].add(item.photo)
        self.by_source[participant][item.source] += 1
        self.count[item.id] += 1

    def _mac(self, text: str, n: int) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()[:n]

    def new_participant(self) -> str:
        """A participant id this server can recognise later (after a restart too): random half, signed half."""
        head = secrets.token_hex(4)
        return head + self._mac("participant:" + head, 8)

    def _check_issued(self, participant: str) -> None:
        _check_participant(participant)
        if not hmac.compare_digest(participant[8:], self._mac("participant:" + participant[:8], 8)):
            raise VoteRefused("unknown participant: this server did not issue that id (reload the page)", 403)

    def token(self, participant: str, image: str) -> str:
        """What /api/next hands out with an image: a vote must bring it back (the image was served to them)."""
        return self._mac(f"shown:{participant}:{image}", 16)

    def next(self, participant: str) -> dict:
        self._check_issued(participant)
        with self._lock:
            done, total = len(self.seen[participant]), len(self.versions)
            item_id = self.pending.get(participant)
            if item_id is None:
                order = sorted(self.versions)
                random.Random(f"{self.study.seed}:{participant}").shuffle(order)
                left = [p for p in order if p not in self.seen[participant]]
                if not left:
                    return {"participant": participant, "finished": True, "done": done, "total": total}
                rng = random.Random(f"{self.study.seed}:{participant}:{left[0]}")
                item_id = min(self.versions[left[0]], key=lambda i: (self.count[i.id],
                              self.by_source[participant][i.source], rng.random())).id
                self.pending[participant] = item_id
                self.count[item_id] += 1
        return {"participant": participant, "image": item_id, "url": f"/images/{item_id}.jpg",
                "token": self.token(participant, item_id), "done": done, "total": total}

    def vote(self, participant: str, image: str, vote: str, response_ms, token) -> dict:
        """Record one judgement of the image this participant was shown; written to votes.csv (fsync'ed)
        before this returns."""
        self._check_issued(participant)
        if vote not in VOTES:
            raise VoteRefused(f"vote must be one of {', '.join(VOTES)}, not {vote!r}")
        if image not in self.items:
            raise VoteRefused(f"{image!r}: no such image in this study", 404)
        if not isinstance(response_ms, (int, float)) or not 0 <= response_ms <= MAX_RESPONSE_MS:
            raise VoteRefused(f"response_ms must be a number of milliseconds, not {response_ms!r}")
        item = self.items[image]
        with self._lock:
            if item.photo in self.seen[participant]:
                raise VoteRefused("this participant has already judged that photo", 409)
            if not isinstance(token, str) or not hmac.compare_digest(token, self.token(participant, image)):
                raise VoteRefused("that image was not shown to this participant", 403)
            self.log.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "participant": participant,
                             "image": image, "photo": item.photo, "source": item.source, "vote": vote,
                             "response_ms": int(response_ms)})
            self._record(participant, item)
            if self.pending.get(participant) == image:   # (a page from before a restart has none)
                del self.pending[participant]
                self.count[image] -= 1   # the assignment becomes the vote
        return {"ok": True}


def _secret(folder: Path) -> bytes:
    """The study's signing key, made once (0600) beside its votes, so ids and tokens outlive a restart."""
    path = folder / ".ballot-key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
        f.flush()
        os.fsync(f.fileno())
    return path.read_bytes()


def _check_participant(participant: str) -> None:
    if not isinstance(participant, str) or not PARTICIPANT.match(participant):
        raise VoteRefused("participant must be the 16-hex-digit id that /api/next gave")


def create_app(ballot: Ballot, host: str = "127.0.0.1"):
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

    from chromalift.apps.web import SECURITY_HEADERS, content_security_policy, guard_origin

    app = FastAPI(title="colorize study", docs_url=None, redoc_url=None, openapi_url=None)
    page = PAGE.read_text()
    csp = content_security_policy(page)

    guard_origin(app, host)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS | {"Content-Security-Policy": csp, "Cache-Control": "no-store"})
        return response

    @app.get("/", response_class=HTMLResponse)
    def index():
        return page

    @app.get("/api/next")
    def next_image(participant: str | None = None):
        try:
            return ballot.next(participant or ballot.new_participant())
        except VoteRefused as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)

    @app.post("/api/vote")
    async def vote(request: Request):
        if not request.headers.get("content-type", "").lower().startswith("application/json"):
            return JSONResponse({"error": "send the vote as JSON (Content-Type: application/json)"}, status_code=415)
        raw = await request.body()
        if len(raw) > 4096:
            return JSONResponse({"error": "a vote is a few short fields"}, status_code=413)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return JSONResponse({"error": "send the vote as JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "send the vote as a JSON object"}, status_code=400)
        try:
            return ballot.vote(body.get("participant"), body.get("image"), body.get("vote"), body.get("response_ms"),
                               body.get("token"))
        except VoteRefused as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)

    @app.get("/images/{name}")
    def image(name: str):
        item_id = name.removesuffix(".jpg")
        if item_id not in ballot.items or name != f"{item_id}.jpg":
            return JSONResponse({"error": f"{name}: no such image"}, status_code=404)
        return FileResponse(ballot.study.image_path(item_id), media_type="image/jpeg")

    return app


def serve(study: Study, host: str = "127.0.0.1", port: int = 7861) -> None:
    from chromalift.apps.server import run

    ballot = Ballot(study)
    votes = len(ballot.log.rows())
    print(f"colorize study: {len(ballot.versions)} photos, sources {', '.join(study.sources)}; {votes} votes so far "
          f"in {study.votes_path}", flush=True)
    print(f"colorize study: open http://{host}:{port}/ in a browser, one per participant (Ctrl+C stops)", flush=True)
    run(create_app(ballot, host), host, port)
