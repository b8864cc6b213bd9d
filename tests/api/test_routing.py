"""`api.routing.Router`: a router that rules itself out with one regular expression
answers exactly as FastAPI's own matching would: the right route, 405 for a known path
with another method, 404 for none, the first router's route before a later one's."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match

from fold.api.routing import Router


def make_app() -> FastAPI:
    first = Router(prefix="/things/{bucket}")

    @first.get("/item/{uid}")
    def item(bucket: str, uid: str) -> dict[str, str]:
        return {"from": "first", "bucket": bucket, "uid": uid}

    @first.post("/item/{uid}/action")
    def action(bucket: str, uid: str) -> dict[str, str]:
        return {"from": "first", "action": uid}

    second = Router(prefix="/things/{bucket}")

    @second.get("/item/{uid}")  # shadowed by the first router's, as in FastAPI
    def shadowed(bucket: str, uid: str) -> dict[str, str]:
        return {"from": "second"}

    @second.get("/other")
    def other(bucket: str) -> dict[str, str]:
        return {"from": "second", "bucket": bucket}

    app = FastAPI()
    app.include_router(first)
    app.include_router(second)
    return app


def test_routes_answer_as_fastapis_own_matching_would() -> None:
    client = TestClient(make_app())
    assert client.get("/things/b1/item/u1").json() == {"from": "first", "bucket": "b1", "uid": "u1"}
    assert client.get("/things/b1/other").json() == {"from": "second", "bucket": "b1"}
    assert client.post("/things/b1/item/u1/action").json() == {"from": "first", "action": "u1"}
    assert client.get("/things/b1/item/u1/action").status_code == 405
    assert client.get("/things/b1/nothing").status_code == 404
    assert client.get("/elsewhere").status_code == 404


def test_a_path_none_of_its_routes_take_is_ruled_out_before_fastapi_tries_them() -> None:
    router = Router(prefix="/things/{bucket}")

    @router.get("/item/{uid}")
    def item(bucket: str, uid: str) -> None:
        return None

    scope = {"type": "http", "path": "/elsewhere/x", "method": "GET", "root_path": ""}
    assert router.matches(scope) == (Match.NONE, {})
    union = router._union()
    assert union is not None
    assert union.match("/things/b/item/u") and not union.match("/things/b/item/u/more")

    @router.get("/late")  # a route added later is in the union too
    def late(bucket: str) -> None:
        return None

    late_union = router._union()
    assert late_union is not None and late_union.match("/things/b/late")
