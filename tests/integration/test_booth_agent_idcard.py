"""The booth agent's ID card reader reaches the serving clerk, through the real server.

Socket mode: the agent serves the booth socket and polls its (simulated) reader from
`call.connected` on; a card placed becomes an `id_photo` material of the live call and the
clerk's `idcard.read` push and materials listing carry the masked number.  A card left lying
on the reader is sent once per call, and again for the next call.  Kiosk mode: the loopback
bridge's `POST /id-card` answers 201 (a new card, name and masked number only), 204 (none),
409 (no reader) and 400 (bad input), sends a card lying there again on `restart` (a transferred
call's new clerk), and keeps the origin check of its other endpoints.  The `--id-card-file`
option of `cloudseat booth` gives the simulated reader its card.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from booth.agent import BoothAgent, KioskBridge
from booth.devices import IdCard, SimulatedIdReader
from booth.devices.id_reader import load_card, synthetic_photo
from cloudseat.cli import CommandError, _booth_devices, _parser
from records.models import Event, Material
from records.privacy import id_check_digit
from signaling.protocol_client import ProtocolClient
from tests.integration.test_booth_agent import agent_call
from tests.media_helpers import wait_until
from tests.signaling_fixtures import PASSWORD, clients, rows, world
from tests.web_clients import login

ITEM = "SB-004"
NUMBER = "11010519491231002X"
MASKED = "110105********002X"


class CountingReader(SimulatedIdReader):
    """A simulated reader that counts how often it was looked at: a test waits on polls, not on time."""

    def __init__(self, card: IdCard | None = None) -> None:
        super().__init__(card)
        self.reads = 0

    def read(self) -> IdCard | None:
        self.reads += 1
        return super().read()



async def polled(reader: CountingReader, times: int) -> None:
    """Wait until the agent has looked at the reader `times` more times."""
    target = reader.reads + times
    await wait_until(lambda: reader.reads >= target, 15, f"{times} polls of the reader")


async def connected_call(booth: ProtocolClient, clerk: ProtocolClient) -> str:
    """A call from the booth socket, accepted by the clerk (the agent on that socket sees call.connected)."""
    call_id = str((await booth.request("call.request", item_code=ITEM))["call_id"])
    await clerk.wait_for("offer", lambda m: m["call_id"] == call_id)
    await clerk.request("offer.accept", call_id=call_id)
    return call_id


async def test_socket_mode_sends_a_placed_card_once_per_call(app_settings):
    with world(app_settings) as w:
        clerk = await w.clerk("c1")
        booth = await w.booth("b1")
        reader = CountingReader()
        agent = BoothAgent(w.url, w.tokens["b1"], id_reader=reader)
        stop = asyncio.Event()
        async with clients(clerk, booth):
            serving = asyncio.create_task(agent.serve(booth, stop))
            try:
                assert agent.card_polling_call is None  # no call, no polling
                call_id = await connected_call(booth, clerk)
                await wait_until(lambda: agent.card_polling_call == call_id, timeout=15)
                await polled(reader, 2)  # an empty reader sends nothing
                assert rows(w, Event, Event.kind == "idcard.read") == []

                reader.place()
                pushed = await clerk.wait_for("idcard.read", lambda m: m["call_id"] == call_id, timeout_s=15)
                assert (pushed["name"], pushed["id_number_masked"]) == ("测试样例", MASKED)
                with closing(login(w.url, "c1", PASSWORD)) as c1:
                    listed = c1.get(f"/api/seat/calls/{call_id}/materials")
                assert listed.status_code == 200
                assert listed.json()["id_card"]["id_number_masked"] == MASKED
                assert [m["kind"] for m in listed.json()["materials"]] == ["id_photo"]
                assert NUMBER not in listed.text

                # Left lying on the reader, the card is not sent again during this call.
                await polled(reader, 3)
                assert len(rows(w, Material, Material.session_id == call_id, Material.kind == "id_photo")) == 1
                assert len(rows(w, Event, Event.kind == "idcard.read")) == 1

                # The call ends: the polling stops.
                await clerk.request("call.end", call_id=call_id)
                await wait_until(lambda: agent.card_polling_call is None, 15, "polling to stop")
                await clerk.request("wrapup.done")

                # The next call reads the card still lying there, once.
                second = await connected_call(booth, clerk)
                again = await clerk.wait_for("idcard.read", lambda m: m["call_id"] == second, timeout_s=15)
                assert again["id_number_masked"] == MASKED and again["material_id"] != pushed["material_id"]
                await polled(reader, 3)
                assert len(rows(w, Material, Material.session_id == second, Material.kind == "id_photo")) == 1
                assert [e.session_id for e in rows(w, Event, Event.kind == "idcard.read")] == [call_id, second]
            finally:
                stop.set()
                await asyncio.wait_for(serving, 10)
            assert agent.card_polling_call is None  # the socket is left: no polling task outlives it


async def test_agent_back_on_the_socket_during_a_live_call_reads_the_card(app_settings):
    """`run` after a reconnect: the welcome names the live call; the card lying there is sent once."""
    with world(app_settings) as w:
        clerk = await w.clerk("c1")
        reader = CountingReader(load_card("sample"))
        agent = BoothAgent(w.url, w.tokens["b1"], id_reader=reader)
        async with clients(clerk):
            call_id, stop, task = await agent_call(w, clerk, agent)
            try:
                pushed = await clerk.wait_for("idcard.read", lambda m: m["call_id"] == call_id, timeout_s=15)
                assert pushed["id_number_masked"] == MASKED
                assert agent.card_polling_call == call_id
                await polled(reader, 3)
                assert len(rows(w, Event, Event.kind == "idcard.read")) == 1
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)


def bridge_post(bridge: KioskBridge, path: str, body: Any, *, origin: str | None, raw: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Origin": origin} if origin else {})}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(bridge.url + path, content=content, headers=headers, timeout=20)


async def test_kiosk_bridge_id_card_endpoint(app_settings):
    with world(app_settings) as w:
        clerk, booth = await w.clerk("c1"), await w.booth("b1")
        reader = SimulatedIdReader()
        bridge = KioskBridge(BoothAgent(w.url, w.tokens["b1"], id_reader=reader), port=0)
        bare = KioskBridge(BoothAgent(w.url, w.tokens["b1"]), port=0)  # an agent without a reader
        bridge.start()
        bare.start()
        try:
            async with clients(clerk, booth):
                call_id = await connected_call(booth, clerk)
                await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id)
                post = lambda body, **kw: bridge_post(bridge, "/id-card", body, origin=w.url, **kw)  # noqa: E731

                # Bad input: 400 with a stable code, nothing read or sent.
                reader.place()
                for bad in ({}, {"call_id": "not-a-uuid"}, {"call_id": call_id.upper()}, {"call_id": 7},
                            {"call_id": call_id, "restart": "yes"}):
                    answer = await asyncio.to_thread(post, bad)
                    assert answer.status_code == 400 and answer.json()["error"] == "invalid", bad
                answer = await asyncio.to_thread(post, None, raw=b"[1, 2]")
                assert answer.status_code == 400
                answer = await asyncio.to_thread(post, None, raw=b"{not json")
                assert answer.status_code == 400
                # Another origin is refused, as on /capture and /print; the preflight names ours only.
                foreign = await asyncio.to_thread(bridge_post, bridge, "/id-card", {"call_id": call_id},
                                                  origin="http://evil.example")
                assert foreign.status_code == 403 and foreign.json() == {"error": "origin"}
                preflight = await asyncio.to_thread(httpx.request, "OPTIONS", bridge.url + "/id-card",
                                                    headers={"Origin": w.url})
                assert preflight.status_code == 204
                assert preflight.headers["access-control-allow-origin"] == w.url
                assert rows(w, Event, Event.kind == "idcard.read") == []

                # No reader: 409.
                none = await asyncio.to_thread(bridge_post, bare, "/id-card", {"call_id": call_id}, origin=w.url)
                assert none.status_code == 409 and none.json() == {"error": "no_id_reader"}

                # The card on the reader: 201 with the name and the masked number, never the full number.
                made = await asyncio.to_thread(post, {"call_id": call_id})
                assert made.status_code == 201, made.text
                body = made.json()
                assert (body["name"], body["masked"], body["kind"]) == ("测试样例", MASKED, "id_photo")
                assert body["id_number_masked"] == MASKED and "id_number" not in body
                assert NUMBER not in made.text
                assert made.headers["access-control-allow-origin"] == w.url
                pushed = await clerk.wait_for("idcard.read", lambda m: m["call_id"] == call_id)
                assert pushed["material_id"] == body["material_id"]

                # Still lying there: 204, nothing new.  Taken off and placed again: a new read.
                for _ in range(2):
                    same = await asyncio.to_thread(post, {"call_id": call_id})
                    assert same.status_code == 204 and same.content == b""
                # The call reconnected to a clerk (a transfer): `restart` makes the card lying there count again.
                restarted = await asyncio.to_thread(post, {"call_id": call_id, "restart": True})
                assert restarted.status_code == 201 and restarted.json()["masked"] == MASKED
                assert (await asyncio.to_thread(post, {"call_id": call_id})).status_code == 204
                reader.remove()
                assert (await asyncio.to_thread(post, {"call_id": call_id})).status_code == 204
                other_number = "11010519900101123" + id_check_digit("11010519900101123")
                reader.place(IdCard(name="李四", number=other_number, photo=synthetic_photo(1)))
                assert (await asyncio.to_thread(post, {"call_id": call_id})).status_code == 201
                assert len(rows(w, Event, Event.kind == "idcard.read")) == 3

                # A call that is not this booth's live one: the server's refusal comes back as 502 upload_failed.
                other = "00000000-0000-4000-8000-000000000000"
                refused = await asyncio.to_thread(post, {"call_id": other})
                assert refused.status_code == 502 and refused.json()["error"] == "upload_failed"
                assert refused.json()["status"] == 404 and NUMBER not in refused.text
                assert len(rows(w, Event, Event.kind == "idcard.read")) == 3
        finally:
            bridge.stop()
            bare.stop()


def test_a_simulated_reader_gets_its_card_from_the_command_line(tmp_path: Path):
    """`cloudseat booth --id-reader simulated --id-card-file PATH`: the card lies on the reader from the start."""
    (tmp_path / "face.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    card_file = tmp_path / "card.json"
    card_file.write_text(json.dumps({"name": "王五", "number": NUMBER, "photo": "face.png"}), encoding="utf-8")
    base = ["booth", "--server", "http://127.0.0.1:9", "--token", "t", "--id-reader", "simulated"]
    devices = _booth_devices(_parser().parse_args([*base, "--id-card-file", str(card_file)]))
    card = devices["id_reader"].read()
    assert (card.name, card.number, card.photo_type) == ("王五", NUMBER, "image/png")
    assert NUMBER not in repr(card)
    sample = _booth_devices(_parser().parse_args([*base, "--id-card-file", "sample"]))["id_reader"].read()
    assert sample.number == NUMBER and sample.photo.startswith(b"\xff\xd8")  # a drawn JPEG portrait
    assert _booth_devices(_parser().parse_args(base))["id_reader"].read() is None  # no card unless given
    card_file.write_text('{"name": "王五"}', encoding="utf-8")
    with pytest.raises(CommandError, match="--id-card-file"):
        _booth_devices(_parser().parse_args([*base, "--id-card-file", str(card_file)]))
    with pytest.raises(CommandError, match="needs --id-reader simulated"):
        _booth_devices(_parser().parse_args(base[:-2] + ["--id-card-file", "sample"]))
