"""Restoring a folder deleted with cascade brings back what that delete took, and only that."""

from __future__ import annotations

from tests.conftest import Tenant, assert_error
from tests.segments.conftest import make_segment, seg_url


def test_restore_with_cascade_brings_back_what_the_delete_took(tenant: Tenant) -> None:
    api = tenant.admin
    folder = make_segment(api, name="Folder", segment_type="auxiliary")
    kept = make_segment(api, name="Kept", parent_segment=folder["uri"])
    child = make_segment(api, name="Child", parent_segment=folder["uri"])
    grandchild = make_segment(api, name="Grandchild", parent_segment=child["uri"])
    earlier = make_segment(api, name="Deleted earlier", parent_segment=folder["uri"])
    assert api.delete(seg_url(api, earlier["uid"])).status_code == 200
    assert_error(api.delete(seg_url(api, folder["uid"])), 409, "conflict", "cascade")
    assert api.delete(seg_url(api, folder["uid"]), params={"cascade": "true"}).status_code == 200
    for seg in (folder, kept, child, grandchild):
        assert_error(api.get(seg_url(api, seg["uid"])), 404, "not_found")

    plain = api.post(seg_url(api, folder["uid"], "/restore"))
    assert plain.status_code == 200 and plain.json()["record_state"] == "active"
    assert_error(api.get(seg_url(api, kept["uid"])), 404, "not_found")

    assert api.delete(seg_url(api, folder["uid"])).status_code == 200
    # The folder alone was deleted this time: its children's delete was an earlier one.
    api.post(seg_url(api, folder["uid"], "/restore"), params={"cascade": "true"})
    assert_error(api.get(seg_url(api, kept["uid"])), 404, "not_found")


def test_cascading_restore_restores_the_whole_tree(tenant: Tenant) -> None:
    api = tenant.admin
    folder = make_segment(api, name="Folder", segment_type="auxiliary")
    child = make_segment(api, name="Child", parent_segment=folder["uri"])
    grandchild = make_segment(api, name="Grandchild", parent_segment=child["uri"])
    earlier = make_segment(api, name="Deleted earlier", parent_segment=folder["uri"])
    assert api.delete(seg_url(api, earlier["uid"])).status_code == 200
    assert api.delete(seg_url(api, folder["uid"]), json={"cascade": True}).status_code == 200
    restored = api.post(seg_url(api, folder["uid"], "/restore"), json={"cascade": "yes"})
    assert restored.status_code == 200, restored.text
    for seg in (folder, child, grandchild):
        assert api.get(seg_url(api, seg["uid"])).json()["record_state"] == "active"
    assert_error(api.get(seg_url(api, earlier["uid"])), 404, "not_found")
    assert_error(
        tenant.editor.post(seg_url(api, folder["uid"], "/restore"), params={"cascade": "true"}),
        403,
        "permission_denied",
    )
