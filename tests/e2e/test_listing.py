"""GET /api/channels: every shape the contract allows (healthcheck issue, 3)."""

import pytest


@pytest.mark.parametrize("variant, value, status", [
    *(("list_shape", shape, "qr_required") for shape in ("channels", "data", "bare")),
    *(("id_field", field, "disconnected") for field in ("name", "channel_id")),  # older ids
])
def test_every_list_shape_and_id_field_is_accepted(run_check, gateway, variant, value, status):
    setattr(gateway, variant, value)
    gateway.add_channel("imobsites", status)
    run = run_check()
    assert run.code == 1, run.stdout
    assert [c["channel"] for c in gateway.calls("qr")] == ["imobsites"]


def test_status_is_compared_trimmed_and_lower_cased(run_check, gateway):
    gateway.raw_list = {"success": True, "channels": [{"id": "a", "status": " CONNECTED "}]}
    run = run_check()
    assert run.code == 0, run.stdout
    assert gateway.calls("qr") == []


@pytest.mark.parametrize("status", ["qr_required", "disconnected", "unknown", "phonecode",
                                    "unpaired", "initializing", "starting", "qr", "CONNECTING"])
def test_anything_but_connected_is_kicked(run_check, gateway, status):
    gateway.raw_list = {"success": True, "channels": [{"id": "a", "status": status}]}
    # The transitional words (initializing, starting, connecting) once their grace is over.
    run = run_check(env={"HEALTHCHECK_STARTING_GRACE_MINUTES": "0"})
    assert run.code in (1, 2), run.stdout
    assert len(gateway.calls("qr")) == 1


def test_missing_or_odd_status_counts_as_not_connected(run_check, gateway):
    gateway.raw_list = {"channels": [{"id": "a"}, {"id": "b", "status": None},
                                     {"id": "c", "status": 1}]}
    run = run_check()
    assert sorted(c["channel"] for c in gateway.calls("qr")) == ["a", "b", "c"]
    assert "status (none)" in run.stdout


def test_entry_without_usable_id_is_skipped_logged_and_unknown(run_check, gateway):
    gateway.raw_list = {"channels": [{"status": "disconnected"}, {"id": "", "status": "x"},
                                     {"id": 7, "status": "x"}, "nonsense",
                                     {"id": "ok", "status": "connected"}]}
    run = run_check()
    assert run.code == 3, run.stdout
    assert run.first_line.endswith("(and 3 more problems)")
    assert run.log.count("has no usable id, skipped") == 5  # the summary and one line each
    assert gateway.calls("qr") == []


def test_duplicated_id_is_handled_once(run_check, gateway):
    gateway.add_channel("a", "disconnected")
    gateway.raw_list = {"channels": [{"id": "a", "status": "disconnected"},
                                     {"id": "a", "status": "disconnected"}]}
    run = run_check()
    assert run.code == 1
    assert len(gateway.calls("qr")) == 1


def test_empty_list_is_unknown(run_check, gateway):
    gateway.channels.clear()
    run = run_check()
    assert run.code == 3
    assert "lists no channels at all" in run.first_line
    assert "lists no channels at all" in run.log


def test_missing_expected_channel_is_critical_and_the_rest_judged(run_check, gateway):
    gateway.channels.clear()
    gateway.add_channel("Pixel12Digital", "disconnected")
    run = run_check(env={"HEALTHCHECK_EXPECTED_CHANNELS": "pixel12digital, imob sites"})
    assert run.code == 2, run.stdout
    assert "expected channel imobsites is missing" in run.stdout
    assert [c["channel"] for c in gateway.calls("qr")] == ["Pixel12Digital"]


def test_empty_list_with_expected_channels_is_critical(run_check, gateway):
    gateway.channels.clear()
    run = run_check(env={"HEALTHCHECK_EXPECTED_CHANNELS": "pixel12digital"})
    assert run.code == 2
    assert "expected channel pixel12digital is missing" in run.first_line
