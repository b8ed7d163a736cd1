"""The booth agent on the booth socket: device report, capture with its camera, print to a spool dir."""

from __future__ import annotations

import asyncio
from contextlib import closing

from sqlmodel import Session, select

from booth.agent import BoothAgent
from booth.devices import SimulatedIdReader, SpoolPrinter, SyntheticCamera
from records.db import make_engine
from records.models import Booth, PrintJob, PrintStatus
from tests.signaling_fixtures import PASSWORD, World, clients, world
from tests.web_clients import login

ITEM = "SB-004"


def booth_row(w: World, name: str) -> Booth:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return session.exec(select(Booth).where(Booth.name == name)).one()
    finally:
        engine.dispose()


def job_row(w: World, job_id: int) -> PrintJob:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            job = session.get(PrintJob, job_id)
            assert job is not None
            return job
    finally:
        engine.dispose()


async def until(predicate, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def agent_call(w: World, clerk, agent: BoothAgent) -> tuple[str, asyncio.Event, asyncio.Task[None]]:
    """A live call asked by a booth socket, then handed over to the agent (a booth reconnect)."""
    booth = await w.booth("b1")
    call_id = (await booth.request("call.request", item_code=ITEM))["call_id"]
    await clerk.wait_for("offer", lambda m: m["call_id"] == call_id)
    await clerk.request("offer.accept", call_id=call_id)
    await booth.close()
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    switchboard = w.server.app.state.switchboard
    await until(lambda: switchboard.local(f"booth:{w.booth_ids['b1']}") is not None)
    return call_id, stop, task


async def test_agent_reports_devices_captures_and_prints(app_settings, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    with world(app_settings) as w:
        clerk = await w.clerk("c1")
        agent = BoothAgent(w.url, w.tokens["b1"], printer=SpoolPrinter(spool),
                           doc_camera=SyntheticCamera(1200, 900), id_reader=SimulatedIdReader())
        async with clients(clerk):
            call_id, stop, task = await agent_call(w, clerk, agent)
            try:
                await until(lambda: booth_row(w, "b1").device_status.get("printer") == "ok")
                assert booth_row(w, "b1").device_status["doc_camera"] == "ok"
                with closing(login(w.url, "c1", PASSWORD)) as c1:
                    assert c1.post(f"/api/seat/calls/{call_id}/capture", json={}).status_code == 202
                    added = await clerk.wait_for("material.added")
                    assert (added["width"], added["height"]) == (1200, 900)
                    c1.post(f"/api/seat/materials/{added['material_id']}/tick", json={"checklist_code": "id_card"})
                    decided = c1.post(f"/api/seat/calls/{call_id}/decision",
                                      json={"outcome": "supplement", "missing_materials": ["photo"]})
                    assert decided.status_code == 201, decided.text
                    job_id = decided.json()["print_job"]["id"]
                result = await clerk.wait_for("print.result")
                assert result["print_job_id"] == job_id and result["status"] == "printed"
                spooled = spool / f"print-job-{job_id}.pdf"
                assert spooled.read_bytes().startswith(b"%PDF-")
                assert job_row(w, job_id).status is PrintStatus.PRINTED
                assert agent.reports[-1].status == "printed"
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)


async def test_paper_out_fails_the_job_and_reports_the_printer(app_settings, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "PAPER_OUT").touch()
    with world(app_settings) as w:
        clerk = await w.clerk("c1")
        agent = BoothAgent(w.url, w.tokens["b1"], printer=SpoolPrinter(spool))
        async with clients(clerk):
            call_id, stop, task = await agent_call(w, clerk, agent)
            try:
                await until(lambda: booth_row(w, "b1").device_status.get("printer") == "paper_out")
                with closing(login(w.url, "c1", PASSWORD)) as c1:
                    decided = c1.post(f"/api/seat/calls/{call_id}/decision",
                                      json={"outcome": "accept", "accept_without": ["id_card", "photo"]})
                    job_id = decided.json()["print_job"]["id"]
                result = await clerk.wait_for("print.result")
                assert result["status"] == "failed" and result["error"].startswith("paper_out")
                job = job_row(w, job_id)
                assert job.status is PrintStatus.FAILED and job.error.startswith("paper_out")
                assert list(spool.glob("*.pdf")) == []
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
