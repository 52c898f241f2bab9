"""POST /api/jobs/submit_settings and GET /api/jobs/default_settings (spec §4)."""
from __future__ import annotations

import pytest

from chalicelib.schemas.jobs import application_defaults
from tests.jobs_support import make_user, submit
from tests.support import body

DEFAULTS = {
    "task": "transcribe", "model": "large", "language": None,
    "alignment": {"processing": {"highlight_words": False, "max_line_count": None, "max_line_width": None},
                  "return_char_alignments": False, "interpolate_method": "nearest"},
    "diarization": None,
    "vad_settings": {"vad_onset": 0.5, "vad_offset": 0.363, "chunk_size": 30},
    "asr_settings": {"beam_size": 5, "patience": 1.0, "length_penalty": 1.0, "temperature": 0.0,
                     "temperature_increment_on_fallback": 0.2, "compression_ratio_threshold": 2.4,
                     "log_prob_threshold": -1.0, "no_speech_threshold": 0.6, "initial_prompt": None,
                     "suppress_tokens": [-1], "suppress_numerals": False},
    "email_notification": False,
}


def test_application_defaults_match_the_spec(api):
    person = make_user()
    assert application_defaults().model_dump(mode="json") == DEFAULTS
    assert body(api.get("/api/jobs/default_settings", token=person.token)) == DEFAULTS


def test_default_settings_needs_no_verification(api):
    person = make_user(verified=False)
    assert body(api.get("/api/jobs/default_settings", token=person.token)) == DEFAULTS
    assert api.get("/api/jobs/default_settings").status_code == 401


def test_submit_settings_returns_increasing_ids_and_only_new_defaults_change_the_default(api):
    person = make_user()
    first = body(api.post("/api/jobs/submit_settings", json={"model": "turbo"}, token=person.token))
    second = body(api.post("/api/jobs/submit_settings", json={}, token=person.token))
    assert isinstance(first, int) and second > first
    assert body(api.get("/api/jobs/default_settings", token=person.token)) == DEFAULTS

    custom = {"language": "de", "email_notification": True, "diarization": {"min_speakers": 1, "max_speakers": 3}}
    r = api.post("/api/jobs/submit_settings", json=custom, token=person.token, query={"is_new_default": "yes"})
    assert r.status_code == 200
    got = body(api.get("/api/jobs/default_settings", token=person.token))
    assert got == {**DEFAULTS, **custom}

    # a later default replaces it; there is only ever one
    api.post("/api/jobs/submit_settings", json={"model": "small"}, token=person.token, query={"is_new_default": "1"})
    assert body(api.get("/api/jobs/default_settings", token=person.token))["model"] == "small"
    # other users are not affected
    assert body(api.get("/api/jobs/default_settings", token=make_user().token)) == DEFAULTS


def test_translate_with_explicit_null_alignment_is_fine(api):
    person = make_user()
    r = api.post("/api/jobs/submit_settings", json={"task": "translate", "alignment": None, "language": "de"},
                 token=person.token)
    assert r.status_code == 200


@pytest.mark.parametrize("settings", [
    {"model": "tiny.en"},  # english-only model without language en
    {"model": "medium.en", "language": "de"},
    {"task": "translate"},  # alignment is on by default
    {"alignment": DEFAULTS["alignment"], "language": "yo"},  # not an alignment language
    {"task": "translate", "alignment": None, "language": "en"},
])
def test_cross_field_rules_are_422_at_body(api, settings):
    person = make_user()
    r = api.post("/api/jobs/submit_settings", json=settings, token=person.token)
    assert r.status_code == 422
    detail = body(r)["detail"]
    assert detail[0]["loc"] == ["body"] and detail[0]["type"] == "value_error"
    assert detail[0]["msg"].startswith("Value error, ")


def test_english_model_with_english_is_fine(api):
    r = api.post("/api/jobs/submit_settings", json={"model": "base.en", "language": "en"}, token=make_user().token)
    assert r.status_code == 200


@pytest.mark.parametrize("settings, loc", [
    ({"vad_settings": {"vad_onset": 0.5, "vad_offset": 0.3}}, ["body", "vad_settings", "chunk_size"]),
    ({"vad_settings": {"vad_onset": 1.0, "vad_offset": 0.3, "chunk_size": 30}}, ["body", "vad_settings", "vad_onset"]),
    ({"vad_settings": {"vad_onset": 0.5, "vad_offset": 0.3, "chunk_size": 31}}, ["body", "vad_settings", "chunk_size"]),
    ({"diarization": {"min_speakers": 2}}, ["body", "diarization", "max_speakers"]),
    ({"diarization": {"min_speakers": -1, "max_speakers": None}}, ["body", "diarization", "min_speakers"]),
    ({"diarization": {"min_speakers": 3, "max_speakers": 2}}, ["body", "diarization"]),
    ({"alignment": {"processing": {"highlight_words": False, "max_line_count": 2, "max_line_width": None},
                    "return_char_alignments": False, "interpolate_method": "nearest"}},
     ["body", "alignment", "processing"]),
    ({"alignment": {"processing": {"highlight_words": False}, "return_char_alignments": False,
                    "interpolate_method": "nearest"}}, ["body", "alignment", "processing", "max_line_count"]),
    ({"asr_settings": {**DEFAULTS["asr_settings"], "beam_size": 0}}, ["body", "asr_settings", "beam_size"]),
    ({"asr_settings": {**DEFAULTS["asr_settings"], "initial_prompt": "x" * 2001}},
     ["body", "asr_settings", "initial_prompt"]),
    ({"asr_settings": {"beam_size": 5}}, ["body", "asr_settings", "patience"]),
    ({"language": "german"}, ["body", "language"]),
    ({"model": "huge"}, ["body", "model"]),
    ({"task": "summarise"}, ["body", "task"]),
])
def test_field_rules_and_nested_objects_need_every_key(api, settings, loc):
    r = api.post("/api/jobs/submit_settings", json=settings, token=make_user().token)
    assert r.status_code == 422
    assert loc in [d["loc"] for d in body(r)["detail"]]


def test_bad_query_and_broken_json(api):
    person = make_user()
    r = api.post("/api/jobs/submit_settings", json={}, token=person.token, query={"is_new_default": "maybe"})
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["query", "is_new_default"]
    r = api.post("/api/jobs/submit_settings", body=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and body(r)["detail"][0]["type"] == "json_invalid"


def test_settings_ids_are_private(api):
    owner, other = make_user(), make_user()
    settings_id = body(api.post("/api/jobs/submit_settings", json={"model": "turbo"}, token=owner.token))
    r = submit(api, other.token, settings_id=settings_id)
    assert r.status_code == 400
    r = submit(api, owner.token, settings_id=settings_id)
    assert r.status_code == 200


def test_new_default_sets_the_owner_flag_and_legacy_rows_still_find_their_default(api):
    from chalicelib.services import job_settings
    from chalicelib.store.job_settings import DEFAULT_POINTER, JobSettings
    from chalicelib.store.users import User

    person = make_user()
    assert User.get(person.user.id).has_default_settings is False  # new rows: no default, nothing to read
    settings_id = body(api.post("/api/jobs/submit_settings", json={"model": "turbo"}, token=person.token,
                                query={"is_new_default": True}))
    assert User.get(person.user.id).has_default_settings is True
    job_id = body(submit(api, person.token))
    info = body(api.get("/api/jobs/info", query={"job_ids": [job_id]}, token=person.token))[0]
    assert info["settings"]["model"] == "turbo"

    legacy = make_user()  # a row written before the flag existed, with a default pointer
    User(legacy.user.id).update(actions=[User.has_default_settings.remove()])
    JobSettings(legacy.user.id, DEFAULT_POINTER, settings={**DEFAULTS, "model": "small"}, default_id=settings_id).save()
    assert User.get(legacy.user.id).has_default_settings is None
    assert job_settings.resolve_for_job(legacy.user.id, None, has_default=None).settings["model"] == "small"
    job_id = body(submit(api, legacy.token))
    info = body(api.get("/api/jobs/info", query={"job_ids": [job_id]}, token=legacy.token))[0]
    assert info["settings"]["model"] == "small"
