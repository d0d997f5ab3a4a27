"""The spawner's commands, state and profile choice, on a real hub's user, with a recording helper."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from traitlets.config import Config

from hubside import jobs
from hubside.spawner import ServerSpawner

from .conftest import running_hub

PROFILES = [
    {"key": "hub", "display": "On the hub <server>", "where": "hub"},
    {"key": "small", "display": "Cluster: 1 CPU", "where": "cluster"},
]


def config(helper, **spawner) -> Config:
    c = Config()
    c.JupyterHub.spawner_class = ServerSpawner
    c.ServerSpawner.helper = str(helper.path)
    c.ServerSpawner.unit_prefix = "jupyter-singleuser@"
    c.ServerSpawner.job_poll_interval = 0.01
    c.ServerSpawner.node_addresses = {"node1": "10.0.0.11"}
    for name, value in spawner.items():
        setattr(c.ServerSpawner, name, value)
    jobs.register()
    return c


def spawner_of(hub, name: str = "alice", **user_options) -> ServerSpawner:
    spawner = hub.user(name).spawners[""]
    spawner.api_token = "t0ken"
    spawner.user_options = user_options
    return spawner


def verbs(helper) -> list[list[str]]:
    return [call["argv"] for call in helper.calls]


def test_a_server_on_the_hub_is_a_unit_started_and_stopped_by_the_helper(helper, tmp_path):
    async def test(hub):
        spawner = spawner_of(hub)
        ip, port = await spawner.start()
        assert ip == "127.0.0.1" and 20000 <= port < 30000  # the proxy's alone (tasks/confinement.py)
        (call,) = helper.calls
        assert call["argv"] == ["start", "alice"]
        # The hub's variables only, as KEY=VALUE lines: the helper decides everything else.
        variables = dict(line.split("=", 1) for line in call["stdin"].splitlines())
        assert variables["JUPYTERHUB_API_TOKEN"] == "t0ken"
        assert all(key.startswith("JUPYTERHUB_") or key == "JPY_API_TOKEN" for key in variables)
        assert spawner.get_state() == {}
        (tmp_path / "unit-state").write_text("ActiveState=active\n")
        assert await spawner.poll() is None
        (tmp_path / "unit-state").write_text("ActiveState=deactivating\n")
        assert await spawner.poll() is None  # its successor cannot start yet
        (tmp_path / "unit-state").write_text("ActiveState=failed\n")
        assert await spawner.poll() == 0
        await spawner.stop()
        assert verbs(helper)[-1] == ["stop", "alice"]

    running_hub(test, config(helper))


def test_a_directory_s_newcomer_gets_an_account_first(helper):
    async def test(hub):
        await spawner_of(hub, "newcomer").start()
        assert verbs(helper) == [["create", "newcomer"], ["start", "newcomer"]]

    running_hub(test, config(helper, create_accounts=True))


def test_a_failing_helper_fails_the_start_saying_why(helper):
    helper.answer(start=["FAIL user-server: refused: alice is in a privileged group: sudo"])

    async def test(hub):
        with pytest.raises(RuntimeError, match="privileged group"):
            await spawner_of(hub).start()

    running_hub(test, config(helper))


def test_a_cluster_server_is_a_job_of_the_profile_s_key_reached_on_its_node(helper):
    helper.answer(submit=["4242"], status=["PENDING", "PENDING", "RUNNING node1"])

    async def test(hub):
        spawner = spawner_of(hub, profile="small")
        assert spawner.start_timeout >= 300  # a job may wait in the queue
        started = asyncio.ensure_future(spawner.start())
        while ["status", "alice", "4242"] not in verbs(helper) or spawner.job_id != "4242":
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert not started.done()  # waits for the job's report of its port (hubside.jobs)
        spawner.reported_port = 40123
        assert await started == ("10.0.0.11", 40123)
        assert verbs(helper)[0] == ["submit", "alice", "small"]
        assert spawner.get_state() == {"profile": "small", "job_id": "4242"}
        assert await spawner.poll() is None
        helper.answer(cancel=[""], status=["RUNNING node1", "GONE"])
        await spawner.stop()
        assert ["cancel", "alice", "4242"] in verbs(helper)

    running_hub(test, config(helper, profiles=PROFILES))


def test_a_job_that_ends_before_its_server_starts_fails_the_start(helper):
    helper.answer(submit=["4242;cluster"], status=["PENDING", "GONE"])

    async def test(hub):
        spawner = spawner_of(hub, profile="small")
        with pytest.raises(RuntimeError, match="4242 ended before the server started"):
            await spawner.start()
        assert spawner.job_id == ""

    running_hub(test, config(helper, profiles=PROFILES))


def test_a_submission_that_names_no_job_fails_the_start(helper):
    helper.answer(submit=["sbatch: error: Batch job submission failed"])

    async def test(hub):
        with pytest.raises(RuntimeError, match="was not submitted"):
            await spawner_of(hub, profile="small").start()

    running_hub(test, config(helper, profiles=PROFILES))


@pytest.mark.parametrize("asked", [None, "", "no-such-profile", "small; rm -rf /"])
def test_no_or_an_unknown_profile_gets_the_first(helper, asked):
    async def test(hub):
        spawner = spawner_of(hub, **({} if asked is None else {"profile": asked}))
        await spawner.start()
        assert verbs(helper) == [["start", "alice"]]
        assert spawner.get_state() == {"profile": "hub"}

    running_hub(test, config(helper, profiles=PROFILES))


def test_the_spawn_page_lists_the_profiles_escaped(helper):
    async def test(hub):
        spawner = spawner_of(hub)
        assert "On the hub &lt;server&gt;" in spawner.options_form and "<server>" not in spawner.options_form
        assert spawner.options_from_form({"profile": ["small"]}) == {"profile": "small"}
        assert spawner.options_from_form({}) == {"profile": ""}

    running_hub(test, config(helper, profiles=PROFILES))


def test_without_profiles_there_is_no_spawn_page(helper):
    async def test(hub):
        assert spawner_of(hub).options_form == ""

    running_hub(test, config(helper))


def test_a_job_of_the_earlier_spawner_is_found_and_what_a_request_planted_is_ignored(helper, tmp_path):
    """State saved by the wrapspawner-based spawner, with the planted exec_prefix of the attack: the
    job is found by its id, polled and cancelled through the helper's argv; nothing runs a shell."""
    canary = tmp_path / "pwned"
    helper.answer(status=["RUNNING node1"])

    async def test(hub):
        spawner = spawner_of(hub)
        spawner.load_state(
            {
                "profile": "gone-profile",
                "child_conf": {"exec_prefix": f"touch {canary};", "batch_query_cmd": f"touch {canary}"},
                "child_state": {"job_id": "77", "job_status": "RUNNING node1"},
            }
        )
        assert spawner.get_state() == {"profile": "gone-profile", "job_id": "77"}
        assert await spawner.poll() is None
        helper.answer(cancel=[""], status=["GONE"])
        await spawner.stop()
        assert verbs(helper) == [["status", "alice", "77"], ["cancel", "alice", "77"], ["status", "alice", "77"]]
        assert not canary.exists()

    running_hub(test, config(helper, profiles=PROFILES))


@pytest.mark.parametrize(
    "state",
    [
        {"job_id": "1; touch /tmp/x"},
        {"job_id": 77},
        {"job_id": "0"},
        {"child_state": {"job_id": "$(id)"}},
        {"profile": ["small"]},
    ],
)
def test_a_state_with_anything_but_a_job_id_and_a_key_loads_as_no_job(helper, state):
    async def test(hub):
        spawner = spawner_of(hub)
        spawner.load_state(state)
        assert "job_id" not in spawner.get_state()
        assert spawner.get_state().get("profile", "") in ("", state.get("profile"))
        assert not isinstance(spawner.get_state().get("profile", ""), list)

    running_hub(test, config(helper, profiles=PROFILES))


@pytest.mark.parametrize(
    ("answer", "running"),
    [
        ("RUNNING node1", True),
        ("PENDING", True),
        ("UNKNOWN", True),
        ("GONE", False),
        ("FAIL squeue: unreachable", True),
    ],
)
def test_a_job_is_polled_as_the_helper_sees_it(helper, answer, running):
    helper.answer(status=[answer])

    async def test(hub):
        spawner = spawner_of(hub)
        spawner.load_state({"profile": "small", "job_id": "88"})
        assert (await spawner.poll() is None) is running
        assert spawner.get_state().get("job_id") == ("88" if running else None)

    running_hub(test, config(helper, profiles=PROFILES))


def test_stop_now_cancels_without_waiting(helper):
    async def test(hub):
        spawner = spawner_of(hub)
        spawner.load_state({"profile": "small", "job_id": "88"})
        await spawner.stop(now=True)
        assert verbs(helper) == [["cancel", "alice", "88"]]

    running_hub(test, config(helper, profiles=PROFILES))


def test_a_job_still_running_after_its_cancel_is_logged(helper):
    helper.answer(status=["RUNNING node1"])
    warnings = []

    async def test(hub):
        spawner = spawner_of(hub)
        spawner.log = logging.getLogger("hubside-test")
        spawner.log.addHandler(logging.Handler())
        spawner.log.handlers[-1].emit = lambda record: warnings.append(record.getMessage())
        spawner.load_state({"profile": "small", "job_id": "88"})
        await spawner.stop()
        assert [argv[0] for argv in verbs(helper)].count("status") == 10
        assert "Job 88 of alice is still running after its cancel" in warnings

    running_hub(test, config(helper, profiles=PROFILES))


def test_the_helper_is_run_with_argv_never_a_shell(helper):
    """A user name a shell would read is passed as one argument (the hub's names are checked
    too; here the spawner alone is under test)."""
    helper.answer(submit=["4242"], status=["GONE"])

    async def test(hub):
        spawner = spawner_of(hub, "o'neil;id", profile="small")
        with pytest.raises(RuntimeError):
            await spawner.start()
        assert verbs(helper)[0] == ["submit", "o'neil;id", "small"]

    running_hub(test, config(helper, profiles=PROFILES))


def test_with_jupyterhub_6_a_server_listens_on_a_unix_socket_in_its_user_s_folder(helper, tmp_path):
    (tmp_path / "unit-state").write_text("ActiveState=active\n")

    async def test(hub):
        spawner = spawner_of(hub)
        url = await spawner.start()
        assert url == "http+unix://" + quote(f"{tmp_path}/sockets/alice/server.sock", safe="")
        (call,) = helper.calls
        variables = dict(line.split("=", 1) for line in call["stdin"].splitlines())
        assert variables["JUPYTERHUB_SERVICE_URL"].startswith(url + "/")  # the server's own path after it

    running_hub(test, config(helper, sockets_dir=f"{tmp_path}/sockets"))


def test_a_server_that_ends_before_it_listens_fails_the_start_at_once(helper, tmp_path):
    """Its person's own configuration raised, say: the start fails within seconds, not at its timeout."""
    helper.answer(start=["ENDED"])

    async def test(hub):
        spawner = spawner_of(hub)
        began = time.monotonic()
        with pytest.raises(
            RuntimeError, match=r"ended before it listened \(journalctl -u jupyter-singleuser@alice[.]service\)"
        ):
            await spawner.start()
        assert time.monotonic() - began < 10

    running_hub(test, config(helper, sockets_dir=f"{tmp_path}/sockets", server_start_timeout=60))


def test_two_servers_starting_at_once_never_get_the_same_port(helper, monkeypatch):
    """The draw gives both the same free port: the second gets another (else the hub would take
    the first one's server for the second's, and route the second person to it: their 404)."""
    free = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free.append(probe.getsockname()[1])
    draws = iter([free[0], free[0], free[1]])

    def draw(first, last):
        return next(draws)

    monkeypatch.setattr("hubside.ports.random", SimpleNamespace(randrange=draw))

    async def test(hub):
        first, second = spawner_of(hub, "alice"), spawner_of(hub, "bob")
        ports = await asyncio.gather(first.start(), second.start())
        assert sorted(port for _, port in ports) == sorted(free)

    running_hub(test, config(helper, start_slots=2))
