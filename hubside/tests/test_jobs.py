"""A job's port report, against the real hub's API: its server's token, once, a port, nothing else.

The attack it closes (issue 23): a student read their server job's token from their own process
and posted spawner attributes (child_config with exec_prefix) to batchspawner's handler; the
hub kept them in the spawner's state and ran the command as its own account at its next start.
"""

from __future__ import annotations

import json

import pytest
from traitlets.config import Config

from hubside import jobs
from hubside.spawner import ServerSpawner

from .conftest import running_hub


def cluster_config(helper_path: str = "/bin/false") -> Config:
    c = Config()
    c.JupyterHub.spawner_class = ServerSpawner
    c.ServerSpawner.helper = helper_path
    c.ServerSpawner.profiles = [{"key": "small", "display": "Cluster", "where": "cluster"}]
    jobs.register()
    return c


def starting_job(user, job_id: str = "42"):
    """The user's server as it is while its job starts: spawn pending, a job, a server token."""
    spawner = user.spawners[""]
    token = user.new_api_token(note="Server at /user/x/")
    spawner.api_token, spawner.job_id, spawner.profile_key = token, job_id, "small"
    spawner._spawn_pending = True
    return spawner, token


def test_a_starting_job_reports_its_port_once_and_only_that_is_kept():
    async def test(hub):
        spawner, token = starting_job(hub.user("alice"))
        response = await hub.post("/job-port", json.dumps({"port": 40123}).encode(), token)
        assert response.code == 201
        assert spawner.reported_port == 40123
        assert spawner.get_state() == {"profile": "small", "job_id": "42"}
        again = await hub.post("/job-port", json.dumps({"port": 40124}).encode(), token)
        assert again.code == 403 and spawner.reported_port == 40123

    running_hub(test, cluster_config())


@pytest.mark.parametrize(
    "body",
    [
        {"child_config": {"exec_prefix": "touch /tmp/pwned;"}},
        {"port": 40123, "child_config": {"exec_prefix": "touch /tmp/pwned;"}},
        {"exec_prefix": "touch /tmp/pwned;"},
        {"batch_submit_cmd": "sh -c id"},
        {"cmd": ["sh"]},
        {"env_keep": ["PATH"]},
        {"req_partition": "admin"},
        {"port": "40123"},
        {"port": 10**9},
        {"port": 80},
        {"port": -1},
        {"port": 40123.0},
        {"port": True},
        [40123],
        "40123",
    ],
)
def test_anything_but_a_port_is_refused_and_nothing_is_set(body):
    async def test(hub):
        spawner, token = starting_job(hub.user("alice"))
        before = spawner.get_state()
        response = await hub.post("/job-port", json.dumps(body).encode(), token)
        assert response.code == 400, response.body
        assert spawner.reported_port == 0
        assert spawner.get_state() == before
        assert not hasattr(spawner, "child_config") and not hasattr(spawner, "exec_prefix")

    running_hub(test, cluster_config())


def test_only_the_starting_server_s_own_token_reports():
    async def test(hub):
        alice, mallory = hub.user("alice"), hub.user("mallory")
        spawner, _ = starting_job(alice)
        _, mallory_token = starting_job(mallory, "43")
        port = json.dumps({"port": 40123}).encode()
        # Another person's server token, the person's own other token, no token.
        assert (await hub.post("/job-port", port, mallory_token)).code in (201, 403)
        assert spawner.reported_port == 0
        assert (await hub.post("/job-port", port, alice.new_api_token(note="e2e"))).code == 403
        assert (await hub.post("/job-port", port)).code == 403
        assert spawner.reported_port == 0
        # A server that is not starting (running, or a unit) takes no report either.
        spawner._spawn_pending = False
        assert (await hub.post("/job-port", port, spawner.api_token)).code == 403
        spawner._spawn_pending, spawner.job_id = True, ""
        assert (await hub.post("/job-port", port, spawner.api_token)).code == 403
        assert spawner.reported_port == 0

    running_hub(test, cluster_config())


def test_batchspawner_s_handler_is_not_there():
    async def test(hub):
        spawner, token = starting_job(hub.user("alice"))
        response = await hub.post("/batchspawner", json.dumps({"port": 40123}).encode(), token)
        assert response.code == 404
        assert spawner.reported_port == 0

    running_hub(test, cluster_config())


def test_a_body_that_is_not_json_is_refused():
    async def test(hub):
        spawner, token = starting_job(hub.user("alice"))
        assert (await hub.post("/job-port", b"port=1", token)).code == 400
        assert spawner.reported_port == 0

    running_hub(test, cluster_config())
