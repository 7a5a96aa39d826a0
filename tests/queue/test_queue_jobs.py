"""Jobs: the assemble dependency, progress summaries, idempotency, limits, tenant
isolation and exports."""

from __future__ import annotations

import datetime as dt

import pytest

from framefarm.application.queue import QueueSettings, TaskPlan
from framefarm.clock import ManualClock
from framefarm.queue.errors import NotFound, TooManyJobs
from framefarm.queue.states import JobState, TaskState
from framefarm.repos import webhooks as outbox
from support.queue_farm import Farm, render_plan


def test_assemble_waits_for_every_render_and_audio_task(farm: Farm, clock: ManualClock) -> None:
    tenant = farm.tenant()
    job = farm.render_job(tenant, renders=3, frames_per_chunk=10)
    assert job.frames_total == 30
    nodes = farm.nodes(5)
    summary = farm.store.summary(farm.job(job.id))
    assert (summary.state, summary.step, summary.percent, summary.frames_done,
            summary.frames_total) == (JobState.QUEUED, "render", 0.0, 0, 30)

    claims = [farm.claim(node) for node in nodes[:4]]
    assert [c.kind for c in claims] == ["render", "render", "render", "audio"]
    assert farm.store.claim(nodes[4]) is None, "assemble is claimable before its inputs"
    started = clock.now()
    clock.advance(10)

    farm.finish(claims[0])
    farm.store.heartbeat(claims[1].task_id, claims[1].lease_token, frames_done=5)
    row = farm.job(job.id)
    assert (row.state, row.started_at) == (JobState.RUNNING, started)
    summary = farm.store.summary(row)
    assert (summary.state, summary.step, summary.frames_done) == (JobState.RUNNING, "render", 15)
    assert summary.percent == 45.0  # renders count 90 %: 15 of 30 frames
    assert summary.eta_seconds == pytest.approx(10 * 55 / 45)

    farm.finish(claims[3])  # audio
    assert farm.store.summary(farm.job(job.id)).percent == 50.0
    farm.finish(claims[1])
    assert farm.store.claim(nodes[4]) is None, "one render is still running"
    assert farm.task_states(job.id)["assemble4"] == TaskState.WAITING
    farm.finish(claims[2])
    summary = farm.store.summary(farm.job(job.id))
    assert (summary.step, summary.frames_done, summary.percent) == ("assemble", 30, 95.0)

    assemble = farm.claim(nodes[4])
    assert (assemble.kind, assemble.frame_start, assemble.frame_end) == ("assemble", 0, 30)
    clock.advance(5)
    done = farm.store.complete(assemble.task_id, assemble.lease_token, "exports/job.mp4")
    assert (done.state, done.result_key, done.finished_at) == (
        JobState.SUCCEEDED, "exports/job.mp4", clock.now())
    summary = farm.store.summary(done)
    assert (summary.state, summary.step, summary.percent, summary.frames_done,
            summary.eta_seconds) == (JobState.SUCCEEDED, "done", 100.0, 30, None)
    outputs = farm.store.task_outputs(job.id)
    assert [o.kind for o in outputs] == ["render", "render", "render", "audio", "assemble"]
    assert all(o.output_key == f"out/{o.id}" for o in outputs[:4])
    assert farm.store.queue_overview() == {TaskState.SUCCEEDED: 5}


def test_assemble_waits_for_the_audio_too(farm: Farm) -> None:
    job = farm.render_job(farm.tenant(), renders=2)
    n1, n2 = farm.nodes(2)
    audio = None
    for _ in range(3):
        claim = farm.claim(n1)
        if claim.kind == "audio":
            audio = claim
        else:
            farm.finish(claim)
    assert audio is not None
    assert farm.store.claim(n2) is None, "assemble is claimable while the audio runs"
    assert farm.task_states(job.id)["assemble3"] == TaskState.WAITING
    farm.finish(audio)
    assert farm.claim(n2).kind == "assemble"


def test_snapshot_job_is_one_task(farm: Farm) -> None:
    job = farm.snapshot_job(farm.tenant())
    claim = farm.claim(farm.node())
    assert (claim.kind, claim.frame_start, claim.frame_end) == ("snapshot", 5, 6)
    done = farm.store.complete(claim.task_id, claim.lease_token, "snap.png")
    assert (done.id, done.state, done.result_key) == (
        job.id, JobState.SUCCEEDED, "snap.png")


def test_idempotency_key_returns_the_same_job(farm: Farm) -> None:
    a, b = farm.tenant(), farm.tenant()
    plan = [TaskPlan("snapshot", 0, 0, 1)]
    first, created = farm.store.submit(
        a, kind="snapshot", document={}, options={}, assets={}, frames_total=1, fps=24,
        plan=plan, idempotency_key="req-1")
    assert created
    again, created = farm.store.submit(
        a, kind="snapshot", document={"other": True}, options={}, assets={}, frames_total=1,
        fps=24, plan=plan, idempotency_key="req-1")
    assert not created
    assert again.id == first.id
    assert again.document == {}
    # The key is per tenant.
    theirs = farm.snapshot_job(b, idempotency_key="req-1")
    assert theirs.id != first.id
    assert len(farm.store.list_jobs(a)) == 1


def test_idempotent_resubmit_queues_no_new_tasks(farm: Farm) -> None:
    tenant = farm.tenant()
    job = farm.render_job(tenant, renders=2, idempotency_key="k")
    same = farm.render_job(tenant, renders=2, idempotency_key="k")
    assert same.id == job.id
    assert sum(farm.store.queue_overview().values()) == 4


@pytest.mark.parametrize("settings", [QueueSettings(max_concurrent_jobs=2)], ids=["max2"])
def test_too_many_unfinished_jobs(farm: Farm, settings: QueueSettings) -> None:
    tenant = farm.tenant()
    roomy = farm.tenant(max_concurrent_jobs=3)
    first = farm.snapshot_job(tenant)
    farm.snapshot_job(tenant)
    with pytest.raises(TooManyJobs):
        farm.snapshot_job(tenant)
    # An idempotent resubmit of a known job is not a new job.
    farm.snapshot_job(roomy, idempotency_key="x")
    # The tenant's own limit overrides the default.
    farm.snapshot_job(roomy)
    farm.snapshot_job(roomy)
    with pytest.raises(TooManyJobs):
        farm.snapshot_job(roomy)
    assert farm.snapshot_job(roomy, idempotency_key="x").tenant_id == roomy
    # Finished jobs no longer count.
    farm.store.cancel(tenant, first.id)
    farm.snapshot_job(tenant)
    with pytest.raises(TooManyJobs):
        farm.store.retry(tenant, first.id)


def test_tenants_see_only_their_own_rows(farm: Farm) -> None:
    store = farm.store
    a, b = farm.tenant("a"), farm.tenant("b")
    project = store.create_project(a, "film")
    template = store.create_template(a, "tpl", {"t": 1}, project.id)
    job = farm.snapshot_job(a)
    farm.run_all(farm.node())
    export = store.create_export(job.id, storage_key="k", size=1, duration=1.0, width=2,
                                 height=2, codec="h264", fmt="mp4", keep_days=1)

    for attempt in (
        lambda: store.get_job(b, job.id),
        lambda: store.cancel(b, job.id),
        lambda: store.retry(b, job.id),
        lambda: store.logs(b, job.id),
        lambda: store.get_project(b, project.id),
        lambda: store.put_document(b, project.id, {"x": 1}),
        lambda: store.add_asset(b, project.id, "a.png", "0" * 64, 1),
        lambda: store.list_assets(b, project.id),
        lambda: store.get_template(b, template.id),
        lambda: store.get_export(b, export.id),
        lambda: store.extend_export(b, export.id, 1),
        lambda: store.delete_export(b, export.id),
        lambda: store.list_jobs(b, before=job.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert store.list_jobs(b) == []
    assert store.list_projects(b) == []
    assert store.list_templates(b) == []
    assert store.list_exports(b) == []
    # ... and the owner still sees everything, unchanged.
    assert store.get_job(a, job.id).state == JobState.SUCCEEDED
    assert store.get_project(a, project.id).document is None
    assert store.get_export(a, export.id).id == export.id
    assert [j.id for j in store.list_jobs(a)] == [job.id]


def test_exports_expire_can_be_extended_and_deleted(farm: Farm, clock: ManualClock) -> None:
    store = farm.store
    tenant = farm.tenant()
    jobs = [farm.snapshot_job(tenant) for _ in range(2)]
    farm.run_all(farm.node())
    created_at = clock.now()
    first = store.create_export(jobs[0].id, storage_key="exports/a.mp4", size=1234,
                                duration=2.5, width=640, height=360, codec="h264", fmt="mp4",
                                keep_days=7)
    assert (first.tenant_id, first.job_id, first.size, first.duration,
            first.format) == (tenant, jobs[0].id, 1234, 2.5, "mp4")
    assert first.expires_at == created_at + dt.timedelta(days=7)
    clock.advance(1)
    second = store.create_export(jobs[1].id, storage_key="exports/b.mp4", size=1,
                                 duration=1.0, width=2, height=2, codec="h264", fmt="mp4",
                                 keep_days=1)
    assert store.get_export(tenant, first.id) == first
    assert store.export_for_job(jobs[0].id) == first
    assert [e.id for e in store.list_exports(tenant)] == [second.id, first.id]

    extended = store.extend_export(tenant, first.id, 3)
    assert extended.expires_at == created_at + dt.timedelta(days=10)
    assert store.expired_exports() == []
    clock.advance(dt.timedelta(days=2).total_seconds())
    assert [e.id for e in store.expired_exports()] == [second.id]
    # Extending an expired export counts from now.
    revived = store.extend_export(tenant, second.id, 1)
    assert revived.expires_at == clock.now() + dt.timedelta(days=1)
    assert store.expired_exports() == []
    clock.advance(dt.timedelta(days=9).total_seconds())
    assert {e.id for e in store.expired_exports()} == {first.id, second.id}

    deleted = store.delete_export(tenant, first.id)
    assert deleted.storage_key == "exports/a.mp4"
    with pytest.raises(NotFound):
        store.get_export(tenant, first.id)
    with pytest.raises(NotFound):
        store.delete_export(tenant, first.id)
    assert store.export_for_job(jobs[0].id) is None
    assert [e.id for e in store.expired_exports()] == [second.id]
    # Admin paths (tenant None) reach every export.
    assert store.delete_export(None, second.id).id == second.id
    assert store.list_exports(tenant) == []


def test_export_of_an_unknown_job_is_refused(farm: Farm) -> None:
    with pytest.raises(NotFound):
        farm.store.create_export("job_missing", storage_key="k", size=1, duration=1.0,
                                 width=2, height=2, codec="h264", fmt="mp4", keep_days=1)


def test_a_finished_render_has_its_webhook_deliveries_in_the_same_transaction(
        farm: Farm) -> None:
    """The outbox: the transaction that finishes a job writes its deliveries, for every
    way a job ends, so no caller has to remember them."""
    tenant = farm.tenant()
    with farm.store.db.tx() as conn:
        outbox.subscribe(conn, tenant, "https://hooks.example/all",
                         ["render.succeeded", "render.failed", "render.cancelled"],
                         now=farm.store.now())
    ended = {}
    for how in ("succeeded", "failed", "cancelled"):
        job, _ = farm.store.submit(
            tenant, kind="render", document={}, options={}, assets={}, frames_total=10,
            fps=24, plan=render_plan(1), notify_url=f"https://hooks.example/{how}")
        if how == "succeeded":
            farm.run_all(farm.node())
        elif how == "failed":
            claim = farm.claim(farm.node())
            farm.store.fail(claim.task_id, claim.lease_token, "bad input", permanent=True)
        else:
            farm.store.cancel(tenant, job.id)
        assert farm.job(job.id).state == how
        with farm.store.db.read() as conn:
            ended[how] = sorted((d.url, d.event) for d in outbox.deliveries(conn, job.id))
    assert ended == {how: sorted([(f"https://hooks.example/{how}", f"render.{how}"),
                                  ("https://hooks.example/all", f"render.{how}")])
                     for how in ("succeeded", "failed", "cancelled")}
