"""PostgreSQL: a node's claim and its completion, each one function, so each costs one
round trip instead of ten (repos/claims.py calls them; SQLite keeps the statements).

``framefarm_claim`` is ``Queue.claim`` (the node's held task, draining, the tenants ranked
by the heads of their queues, the best one's next task locked with SKIP LOCKED, leased and
logged); ``framefarm_complete`` is the start of ``Queue.complete`` up to the job's lock,
and for a render or audio chunk the rest of it too (the assemble task released when it
was the last input). What only Python decides comes in as parameters: the states, from
the state machine, and the log lines' formats. Both return JSON: the rows they wrote, and
what the caller finishes with (the job's state; the job and its tasks' kinds and states).

No bodies here hold a percent sign: Alembic's text() would take it for a placeholder.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The conditions of a claimable task (repos/claims.py: _claimable), for the node p_node.
_CLAIMABLE = """
          t.state = p_queued AND t.not_before <= p_now AND t.engine = ANY (engines)
          AND NOT EXISTS (SELECT 1 FROM node_blocks b WHERE b.job_id = t.job_id
                          AND b.node_id = p_node AND b.blocked)"""

CLAIM = f"""
CREATE FUNCTION framefarm_claim(
    p_node text, p_now timestamptz, p_token text, p_expires timestamptz,
    p_default_engines text[], p_queued text, p_running text, p_log text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    node nodes;
    engines text[];
    head record;
    picked tasks;
BEGIN
    SELECT * INTO node FROM nodes WHERE id = p_node;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- A node that holds a task gets it back (the answer to its last claim was lost).
    IF node.current_task_id IS NOT NULL THEN
        SELECT * INTO picked FROM tasks WHERE node_id = p_node AND state = p_running LIMIT 1;
        IF FOUND THEN
            UPDATE nodes SET last_heartbeat = p_now, current_task_id = picked.id
             WHERE id = p_node;
            RETURN jsonb_build_object('task', to_jsonb(picked));  -- no job_state: nothing changed
        END IF;
    END IF;
    IF node.draining THEN
        RETURN NULL;
    END IF;
    engines := CASE WHEN jsonb_typeof(node.capabilities -> 'engines') = 'array'
                         AND jsonb_array_length(node.capabilities -> 'engines') > 0
                    THEN ARRAY(SELECT jsonb_array_elements_text(node.capabilities -> 'engines'))
                    ELSE p_default_engines END;
    -- The tenants best first: the head of each one's queue (one index probe each), then
    -- the fewest running tasks, the oldest job.
    FOR head IN
        SELECT tenants.id
          FROM tenants
         CROSS JOIN LATERAL (
               SELECT t.priority, t.job_created_at FROM tasks t
                WHERE t.tenant_id = tenants.id AND {_CLAIMABLE}
                ORDER BY t.priority DESC, t.job_created_at, t.idx
                LIMIT 1) AS first
          LEFT JOIN (SELECT tenant_id, count(*) AS n FROM tasks WHERE state = p_running
                      GROUP BY tenant_id) AS running ON running.tenant_id = tenants.id
         ORDER BY first.priority DESC, coalesce(running.n, 0), first.job_created_at,
                  tenants.id
    LOOP
        -- A task this node last failed only when the tenant has nothing else for it.
        SELECT t.* INTO picked FROM tasks t
         WHERE t.tenant_id = head.id AND {_CLAIMABLE}
           AND (t.last_failed_node IS NULL OR t.last_failed_node <> p_node)
         ORDER BY t.priority DESC, t.job_created_at, t.idx
         LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
        EXIT WHEN picked.id IS NOT NULL;
        SELECT t.* INTO picked FROM tasks t
         WHERE t.tenant_id = head.id AND {_CLAIMABLE}
         ORDER BY t.priority DESC, t.job_created_at, t.idx
         LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
        EXIT WHEN picked.id IS NOT NULL;
    END LOOP;
    IF picked.id IS NULL THEN
        UPDATE nodes SET last_heartbeat = p_now, current_task_id = NULL WHERE id = p_node;
        RETURN NULL;
    END IF;
    -- Locked as queued: nothing can have moved it since.
    UPDATE tasks SET state = p_running, node_id = p_node, lease_token = p_token,
                     lease_expires_at = p_expires, started_at = p_now, frames_done = 0
     WHERE id = picked.id
    RETURNING * INTO picked;
    UPDATE nodes SET last_heartbeat = p_now, current_task_id = picked.id WHERE id = p_node;
    INSERT INTO job_logs (job_id, at, level, message, task_id, node_id)
    VALUES (picked.job_id, p_now, 'info',
            format(p_log, picked.kind, picked.idx, picked.frame_start, picked.frame_end),
            picked.id, p_node);
    RETURN jsonb_build_object(
        'task', to_jsonb(picked),
        'job_state', (SELECT state FROM jobs WHERE id = picked.job_id));
END
$$
"""

COMPLETE = """
CREATE FUNCTION framefarm_complete(
    p_task text, p_token text, p_now timestamptz, p_output text, p_cpu double precision,
    p_running text, p_succeeded text, p_log text, p_cpu_steps text[], p_inputs text[],
    p_waiting text[], p_ready text, p_channel text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    done tasks;
BEGIN
    -- Read as it is locked (the lock an UPDATE takes): a task requeued and claimed again
    -- since has another token. Compared as hashes, so the comparison's time tells nothing
    -- about the token.
    SELECT * INTO done FROM tasks WHERE id = p_task FOR NO KEY UPDATE;
    IF done.lease_token IS NULL OR md5(done.lease_token) <> md5(p_token) THEN
        RETURN jsonb_build_object('stale', NULL);
    END IF;
    IF done.state <> p_running THEN
        RETURN jsonb_build_object('stale', done.state);
    END IF;
    UPDATE tasks SET state = p_succeeded, output_key = p_output, finished_at = p_now,
                     lease_token = NULL, lease_expires_at = NULL,
                     frames_done = frame_end - frame_start
     WHERE id = p_task
    RETURNING * INTO done;
    IF done.node_id IS NOT NULL THEN
        UPDATE nodes SET tasks_done = tasks_done + 1, current_task_id = NULL,
                         last_heartbeat = p_now
         WHERE id = done.node_id;
    END IF;
    INSERT INTO job_logs (job_id, at, level, message, task_id, node_id)
    VALUES (done.job_id, p_now, 'info', format(p_log, done.kind, done.idx), done.id,
            done.node_id);
    IF p_cpu IS NOT NULL AND p_cpu <> 0 AND done.kind = ANY (p_cpu_steps) THEN
        UPDATE job_usage SET
            cpu_render = cpu_render + CASE WHEN done.kind = 'render' THEN p_cpu ELSE 0 END,
            cpu_audio = cpu_audio + CASE WHEN done.kind = 'audio' THEN p_cpu ELSE 0 END,
            cpu_assemble = cpu_assemble
                           + CASE WHEN done.kind = 'assemble' THEN p_cpu ELSE 0 END,
            cpu_snapshot = cpu_snapshot
                           + CASE WHEN done.kind = 'snapshot' THEN p_cpu ELSE 0 END
         WHERE job_id = done.job_id;
    END IF;
    -- The job's lock, as late as possible: it orders the completions of its last inputs
    -- (the one that locks last sees the others committed).
    PERFORM 1 FROM jobs WHERE id = done.job_id FOR NO KEY UPDATE;
    IF NOT (done.kind = ANY (p_inputs)) OR done.shared_key IS NOT NULL THEN
        RETURN jsonb_build_object('task', to_jsonb(done));  -- the caller goes on
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tasks WHERE job_id = done.job_id
                   AND kind = ANY (p_inputs) AND state <> p_succeeded) THEN
        UPDATE tasks SET state = p_ready, not_before = p_now
         WHERE job_id = done.job_id AND state = ANY (p_waiting);
    END IF;
    PERFORM pg_notify(p_channel, done.job_id);
    RETURN jsonb_build_object(
        'task', to_jsonb(done),
        'job', (SELECT to_jsonb(jobs) FROM jobs WHERE id = done.job_id),
        'tasks', (SELECT jsonb_agg(DISTINCT jsonb_build_array(kind, state)) FROM tasks
                   WHERE job_id = done.job_id));
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CLAIM)
        op.execute(COMPLETE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION framefarm_complete")
        op.execute("DROP FUNCTION framefarm_claim")
