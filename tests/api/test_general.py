from tests.support import body


def test_about(api):
    r = api.get("/api/about")
    assert r.status_code == 200
    data = body(r)
    assert data["version"].count(".") == 2 and not data["version"].startswith("0.0")
    assert data["site_banners"] == [] and data["imprint"] is None and data["terms_of_services"] == {}
    assert data["job_retention_in_days"] is None


def test_unknown_path_is_404_in_detail_shape(api):
    for path in ("/nope", "/api/nope/deeper/still", "/"):
        r = api.get(path)
        assert r.status_code == 404
        assert body(r) == {"detail": "Not Found"}


def test_wrong_method_is_405(api):
    r = api.request("DELETE", "/api/about")
    assert r.status_code == 405
    assert body(r) == {"detail": "Method Not Allowed"}
