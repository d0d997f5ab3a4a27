"""The rules between settings, run once every setting is valid on its own (Settings'
model validator): names that must differ, settings that need one another, paths that must
not overlap, and what a single value cannot tell (an installer's checksum, a key that
matches its certificate). Each raises ValueError naming the settings involved."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePath, PurePosixPath
from typing import TYPE_CHECKING

from tasks.layout import BACKUP_STAGING, INSTALLER_CACHE, RESTIC_DIR, SERVER_PORTS
from tasks.settings import controller, courses, pem, sharing, subdomains
from tasks.settings.constants import COURSE_GROUPS, HUB_PATHS, LETS_ENCRYPT, NATIVE_PACKAGE, SERVER_RELEASES
from tasks.settings.network import local_host
from tasks.settings.types import at_or_below, lock_sets, memory_bytes

if TYPE_CHECKING:
    from tasks.settings.model import Settings

# The login providers' settings, and the key of each that names who may log in.
PROVIDERS = (
    ("ldap", "allowed_groups"),
    ("oidc", "allowed_groups"),
    ("github", "allowed_organizations"),
    ("lti13", "courses"),
)


def check(settings: Settings) -> None:
    """Raises ValueError for the first rule between settings that settings breaks."""
    if settings.hub_user == settings.users_group:
        raise ValueError("jh_users_group must differ from jh_hub_user")
    names = [u.name for u in settings.users]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"jh_users lists {', '.join(duplicates)} more than once")
    if settings.hub_user in names or settings.hub_user in settings.admin_users:
        raise ValueError(f"the hub's own account {settings.hub_user!r} cannot be a hub user or admin")
    _people(settings)
    courses.check(settings)
    sharing.check(settings)
    kernel_names = [k.name for k in settings.kernels]
    if len(set(kernel_names)) != len(kernel_names):
        raise ValueError("jh_kernels: two kernels have the same name")
    if settings.idle_check_interval > settings.idle_timeout:
        raise ValueError("jh_idle_check_interval must not exceed jh_idle_timeout")
    if settings.notify_command and not settings.notify_on_failure:
        raise ValueError("jh_notify_command needs jh_notify_on_failure = True")
    monitoring = settings.monitoring
    if monitoring and not (monitoring.webhook_url or monitoring.email_to or settings.notify_command):
        raise ValueError("jh_monitoring: webhook_url, email_to or jh_notify_command: alerts must reach a person")
    _ca_names(settings)
    _web(settings)
    subdomains.check(settings)
    if not (settings.server_release_dir / "requirements.in").is_file():
        raise ValueError(
            f"jh_server_release: {settings.server_release!r} is not a folder of files/server/ "
            f"(choose one of {lock_sets(SERVER_RELEASES)}) nor the absolute path of a folder with a requirements.in"
        )
    if (
        settings.authenticator == "native"
        and NATIVE_PACKAGE not in settings.server_release_dir.joinpath("requirements.in").read_text()
    ):
        raise ValueError(
            f'jh_authenticator = "native" needs {NATIVE_PACKAGE} in the server release: jh_server_release = '
            '"jupyterhub-5" has it (its newest version does not run on JupyterHub 6)'
        )
    _conda(settings)
    _managed_folders(settings)
    _risks(settings)
    _controller_paths(settings)
    _restore(settings)
    _cluster(settings)
    if settings.postgresql_database in ("postgres", "template0", "template1"):
        raise ValueError(f"jh_db_url: {settings.postgresql_database} is PostgreSQL's own database; choose another name")
    try:
        json.dumps(settings.lab_settings, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"jh_lab_settings must hold JSON values only (text, numbers, booleans, lists, dicts): {error}"
        ) from None


def _given(settings: Settings, names: tuple[str, ...]) -> list[str]:
    """The settings of names that the data gives (as jh_ names)."""
    return [f"jh_{name}" for name in names if name in settings.model_fields_set]


def _overlap(path: PurePath, other: PurePath) -> bool:
    return at_or_below(path, other) or at_or_below(other, path)


def _people(settings: Settings) -> None:
    for name, allowed in PROVIDERS:
        provider = getattr(settings, name)
        if (settings.authenticator == name) != (provider is not None):
            raise ValueError(f'jh_{name} is needed with jh_authenticator = "{name}", and only then')
        if provider and not (getattr(provider, allowed) or settings.present_users):
            raise ValueError(f"jh_{name}: give {allowed} or jh_users, or nobody may log in")
    if settings.bound_login and settings.domain is None:
        raise ValueError(
            f"jh_{settings.authenticator} needs jh_domain: the provider sends people back to https://<jh_domain>/"
        )
    _accounts(settings)
    absent = {u.name for u in settings.absent_users}
    for name in settings.admin_users:
        if name in absent:
            raise ValueError(
                f"jh_users: {name} is in jh_admin_users and cannot be off-boarded (state absent); "
                "take it out of jh_admin_users first"
            )
    users = {u.name for u in settings.users}
    _course_groups(settings)
    for group, members in settings.groups.items():
        if group in (settings.users_group, settings.hub_user) or group in users:
            raise ValueError(
                f"jh_groups: {group} is the login group, the hub's account or a user's own group; choose another"
            )
        if gone := sorted(absent.intersection(members)):
            raise ValueError(f"jh_groups: {group} lists {', '.join(gone)}, off-boarded (state absent)")
    paths = [d.path for d in settings.shared_dirs]
    for index, path in enumerate(paths):
        for other in paths[index + 1 :]:
            if _overlap(path, other):
                raise ValueError(f"jh_shared_dirs: {path} and {other} overlap; give folders side by side")
        if _overlap(path, settings.install_root):
            raise ValueError(f"jh_shared_dirs: {path} overlaps jh_install_root")
    links = [d.link_name for d in settings.shared_dirs]
    if len(set(links)) != len(links):
        raise ValueError("jh_shared_dirs: two folders have the same name (the link in each home)")
    for shared in settings.shared_dirs:
        if shared.group not in (None, settings.users_group, *settings.groups):
            raise ValueError(
                f"jh_shared_dirs: {shared.path} names the group {shared.group}, "
                f"which is neither in jh_groups nor jh_users_group"
            )
    if at_or_below(settings.offboard_dir, settings.install_root) or settings.offboard_dir in paths:
        raise ValueError("jh_offboard_dir must be outside jh_install_root and jh_shared_dirs")


def _course_groups(settings: Settings) -> None:
    """A course's groups are the deploy's (jh_courses) or the launches' (hubside.lti): not jh_groups."""
    named = set(settings.lti13.courses.values()) if settings.lti13 else set()
    for course in sorted(named | set(settings.courses)):
        for kind in COURSE_GROUPS:
            if f"{course}-{kind}" in (*settings.groups, settings.users_group, settings.hub_user):
                raise ValueError(
                    f"the course {course} has the group {course}-{kind}, which the deploy or the launches "
                    "fill: it cannot be one of jh_groups, jh_users_group or jh_hub_user"
                )


def _accounts(settings: Settings) -> None:
    """With OAuth, a name is an account's only where the settings say which (the claim is the
    person's to edit): every admin's is said, and no account holds two names."""
    given = [u for u in settings.users if u.account is not None]
    if given and not settings.bound_login:
        raise ValueError(
            f'jh_users: {given[0].name} has an account, which only "oidc", "github" and "lti13" logins use'
        )
    if not settings.bound_login:
        return
    accounts = {u.name: u.account for u in settings.present_users}
    for name in settings.admin_users:
        if accounts.get(name) is None:
            raise ValueError(
                f"jh_admin_users: {name} needs its provider account in jh_users (account: the OpenID Connect sub, "
                "GitHub id or learning platform's sub): the name alone would go to whoever signs in with it first"
            )
    held = [account for account in accounts.values() if account is not None]
    if len(set(held)) != len(held):
        raise ValueError("jh_users: two names have the same provider account")


def _cluster(settings: Settings) -> None:
    if not settings.cluster:
        cluster_only = ("cluster_address", "slurm_partitions", "spawn_profiles", "shared_home")
        given = _given(settings, (*cluster_only, "slurm_user_limits", "slurm_group_limits"))
        if given:
            raise ValueError(f"{', '.join(given)} needs jh_cluster = True")
        return
    if settings.cluster_address is None:
        raise ValueError(
            "jh_cluster needs jh_cluster_address on each host: its IP address on the network the hub "
            "and the nodes share"
        )
    if settings.cluster_address.is_loopback or settings.cluster_address.is_unspecified:
        raise ValueError("jh_cluster_address must be an address the other hosts reach (not loopback, not 0.0.0.0)")
    if not settings.cluster_address.is_private:
        raise ValueError(
            f"jh_cluster_address {settings.cluster_address} is a public address: the hub's API and the users' "
            "servers talk in plain HTTP on the cluster's network, which must be a private one (10/8, 172.16/12, "
            "192.168/16)"
        )
    if not settings.firewall:
        raise ValueError(
            "jh_cluster needs jh_firewall = True: the hub's API and the users' servers on the nodes must be "
            "reachable from the cluster's own hosts alone"
        )
    keys = [p.key for p in settings.spawn_profiles]
    if not keys or len(set(keys)) != len(keys):
        raise ValueError("jh_spawn_profiles: give at least one profile, each with a key of its own")
    for profile in settings.spawn_profiles:
        if profile.partition is not None and profile.partition not in settings.partitions:
            raise ValueError(
                f"jh_spawn_profiles: {profile.key} asks for partition {profile.partition}, "
                f"not one of jh_slurm_partitions ({', '.join(settings.partitions)})"
            )
    _slurm_limits(settings)
    if settings.authenticator != "pam":
        raise ValueError(
            "jh_cluster: accounts must be the same on the hub and every node, so the people are "
            'jh_users, who log in with jh_authenticator = "pam" (accounts made at a first login '
            "would exist on the hub alone)"
        )


def _slurm_limits(settings: Settings) -> None:
    """Each person's cap, with their groups', admits the largest job a profile asks for."""
    for group in settings.slurm_group_limits:
        if group not in settings.groups:
            raise ValueError(f"jh_slurm_group_limits: {group} is not one of jh_groups")
    jobs = [p for p in settings.spawn_profiles if p.where == "cluster"]
    user = settings.slurm_user_limits
    for name, limits in (
        ("jh_slurm_user_limits", user),
        *((f"jh_slurm_group_limits[{group}]", limits) for group, limits in settings.slurm_group_limits.items()),
    ):
        cpus, memory_mb = limits.cpus or user.cpus, limits.memory_mb or user.memory_mb
        for profile in jobs:
            if (cpus and cpus < profile.cpus) or (memory_mb and memory_mb < profile.memory_mb):
                raise ValueError(
                    f"{name}: {cpus or 'no limit on'} cores and {limits.memory or user.memory or 'no limit on'} "
                    f"memory cannot run the profile {profile.key} ({profile.cpus} cores, {profile.memory})"
                )


# Folders anyone may write to, whose programs root must never run (a notifier there is anyone's).
WRITABLE_BY_OTHERS = tuple(
    PurePosixPath(p) for p in ("/tmp", "/var/tmp", "/dev/shm", "/run/user", "/home", "/run/lock")
)
# Folders in a home that Jupyter, Python or the shell read: a shared folder named so would be every member's own.
DOT_FOLDERS = (
    "a folder whose name starts with a dot (~/.jupyter, ~/.ssh, ~/.local, ... are read by Jupyter and the shell)"
)
# Bigger than any machine: systemd cannot take it, and every server start would fail.
MAX_MEMORY = 64 * 1024**4


def _managed_folders(settings: Settings) -> None:
    """The folders the deploy manages never overlap, and root runs no program from a folder others write."""
    folders = [
        ("jh_install_root", settings.install_root),
        ("jh_conda_prefix", settings.conda_prefix),
        ("jh_offboard_dir", settings.offboard_dir),
        ("the deploy's backup staging folder", BACKUP_STAGING),
        ("the deploy's installer cache", INSTALLER_CACHE),
        ("the nightly backup's keys", RESTIC_DIR),
        *((f"jh_shared_dirs[{i}]", d.path) for i, d in enumerate(settings.shared_dirs)),
    ]
    if settings.nightly_backup and not settings.nightly_backup.sftp_target:
        folders.append(("jh_nightly_backup.repository", settings.nightly_backup.folder))
    for index, (name, path) in enumerate(folders):
        for other_name, other in folders[index + 1 :]:
            if at_or_below(path, other) or at_or_below(other, path):
                raise ValueError(f"{name} ({path}) and {other_name} ({other}) overlap; give folders side by side")
    for index, shared in enumerate(settings.shared_dirs):
        if shared.link_name.startswith("."):
            raise ValueError(f"jh_shared_dirs[{index}]: {shared.path} is {DOT_FOLDERS}")
    if settings.notify_command:
        program = PurePosixPath(settings.notify_command.split(" ")[0])
        for place in (*WRITABLE_BY_OTHERS, settings.layout.state_dir):
            if at_or_below(program, place):
                raise ValueError(
                    f"jh_notify_command: root runs {program}, which is in {place}, a folder others (or the hub's "
                    "account) may write to: put the program where only root writes, such as /usr/local/bin"
                )
    if settings.hub_user in {name for members in settings.groups.values() for name in members}:
        raise ValueError(f"jh_groups: the hub's account {settings.hub_user} cannot be a member of a people's group")


def _restore(settings: Settings) -> None:
    if settings.restore_snapshot and settings.restore_archive:
        raise ValueError("jh_restore_archive and jh_restore_snapshot: give one, the archive or the snapshot")
    if settings.restore_snapshot and not settings.nightly_backup:
        raise ValueError("jh_restore_snapshot is taken from jh_nightly_backup's repository: set jh_nightly_backup")


def _controller_paths(settings: Settings) -> None:
    """The controller's folders the deploy writes secrets to or takes code from are the admin's alone."""
    paths = [("jh_backup_dir", settings.backup_dir, "backups hold every token and the cookie secret")]
    if PurePath(settings.server_release).is_absolute():
        paths.append(("jh_server_release", settings.server_release_dir, "root installs the locks it holds"))
    if settings.conda_installer_file:
        paths.append(("jh_conda_installer_file", settings.conda_installer_file, "root runs the installer"))
    if settings.lti13:
        # Another user's key in its place: the hub would publish their public key as the tool's.
        paths.append(("jh_lti13[tool_key_file]", settings.lti13.tool_key_file, "the tool's identity is this key"))
    for name, path, why in paths:
        problem = controller.unsafe(path)
        if problem:
            raise ValueError(f"{name}: {problem}; {why}: choose a folder only you can change")


def _risks(settings: Settings) -> None:
    """Clear text and no bound: refused unless a jh_allow_* setting takes the risk on purpose."""
    if not settings.public_ip.is_loopback and settings.domain is None and not settings.allow_public_http:
        raise ValueError(
            f"jh_public_ip {settings.public_ip} without jh_domain serves the hub in plain HTTP on the network "
            "(passwords and tokens in clear): set jh_domain (nginx with TLS), keep jh_public_ip on loopback, or "
            "set jh_allow_public_http = True for a closed network"
        )
    plain = [
        name
        for name in (
            "pip_index_url",
            "npm_registry_url",
            "conda_channel_alias",
            "conda_installer_url",
            "nltk_index_url",
        )
        if str(getattr(settings, name) or "").startswith("http://")
    ]
    if plain and not settings.allow_plain_http_downloads:
        raise ValueError(
            f"{', '.join('jh_' + name for name in plain)}: plain http://, so root would install what anyone on the "
            "path serves: use https://, or set jh_allow_plain_http_downloads = True for a mirror you trust"
        )
    if settings.user_tasks_limit is None and not settings.allow_unlimited_tasks:
        raise ValueError(
            "jh_user_tasks_limit: none lets one person's fork bomb take the machine; give a number (the default is "
            "1024) or set jh_allow_unlimited_tasks = True"
        )
    sizes = [("jh_user_memory_limit", settings.user_memory_limit)]
    sizes += [(f"jh_group_limits[{group}][memory]", limit.memory) for group, limit in settings.group_limits.items()]
    for name, size in sizes:
        if size and memory_bytes(size) > MAX_MEMORY:
            raise ValueError(f"{name}: {size} is more memory than any machine has (at most 64T)")


def _conda(settings: Settings) -> None:
    if at_or_below(settings.conda_prefix, settings.install_root):
        raise ValueError("jh_conda_prefix must be outside jh_install_root")
    if at_or_below(settings.install_root, settings.conda_prefix):
        raise ValueError("jh_install_root must be outside jh_conda_prefix")
    if settings.conda_installer_file is not None:
        actual = hashlib.sha256(settings.conda_installer_file.read_bytes()).hexdigest()
        if actual != settings.conda_installer_sha256:
            raise ValueError(
                f"jh_conda_installer_file {settings.conda_installer_file} has sha256 {actual}, "
                f"but jh_conda_installer_sha256 is {settings.conda_installer_sha256}: "
                "give the installer that matches the pinned checksum"
            )


def _web(settings: Settings) -> None:
    if settings.domain is None:
        given = _given(settings, ("certificate_file", "certificate_key_file", "services", "acme_email"))
        if given or settings.base_url != "/":
            raise ValueError(f"{', '.join(given) or 'jh_base_url'} needs jh_domain (the nginx front)")
        return
    if not settings.public_ip.is_loopback:
        raise ValueError("with jh_domain set, nginx faces the network: jh_public_ip must stay on loopback")
    manual = settings.certificate_file is not None, settings.certificate_key_file is not None
    if settings.certificate == "manual" and not all(manual):
        raise ValueError("jh_certificate = 'manual' needs jh_certificate_file and jh_certificate_key_file")
    if settings.certificate != "manual" and any(manual):
        raise ValueError("jh_certificate_file and jh_certificate_key_file need jh_certificate = 'manual'")
    if settings.certificate_file is not None and settings.certificate_key_file is not None:
        certificate = pem.certificates(settings.certificate_file, "a certificate")[0]
        key = pem.private_key(settings.certificate_key_file)
        if pem.public_key(certificate.public_key()) != pem.public_key(key.public_key()):
            raise ValueError(
                "jh_certificate_key_file: not the key of the first certificate in jh_certificate_file "
                "(their public keys differ)"
            )
    if settings.acme_staging and str(settings.acme_directory_url) != LETS_ENCRYPT:
        raise ValueError("jh_acme_staging chooses Let's Encrypt's staging server: leave jh_acme_directory_url unset")
    # The hub's own paths (all of its namespace when it sits below a base URL) and
    # earlier services: a service may neither sit inside one nor contain one.
    taken = [*HUB_PATHS] if settings.base_url == "/" else [settings.base_url, "/.well-known/"]
    for index, service in enumerate(settings.services):
        for path in taken:
            if service.path == "/" or service.path.startswith(path) or path.startswith(service.path):
                raise ValueError(f"jh_services[{index}]: path {service.path} overlaps {path}")
        taken.append(service.path)
        # nginx must not proxy to itself nor expose the hub's proxy under another path.
        if local_host(service.upstream.host or ""):
            if service.upstream.port == settings.public_port:
                raise ValueError(
                    f"jh_services[{index}][upstream]: must not point at the hub's proxy "
                    f"(jh_public_port {settings.public_port} on this host)"
                )
            if service.upstream.port in (80, 443):
                raise ValueError(
                    f"jh_services[{index}][upstream]: must not point at nginx itself (port {service.upstream.port} on this host)"
                )
            if SERVER_PORTS[0] <= service.upstream.port < SERVER_PORTS[1]:
                raise ValueError(
                    f"jh_services[{index}][upstream]: port {service.upstream.port} is among the users' servers' "
                    f"ports ({SERVER_PORTS[0]}-{SERVER_PORTS[1] - 1}): a server given it would take the service's place"
                )


def _ca_names(settings: Settings) -> None:
    # tasks/system.py uploads each as <stem>.crt: two with one stem would overwrite each other.
    stems: dict[str, int] = {}
    for index, certificate in enumerate(settings.extra_ca_certificates):
        if certificate.stem in stems:
            raise ValueError(
                f"jh_extra_ca_certificates[{index}]: {certificate.name} would be uploaded as {certificate.stem}.crt "
                f"like jh_extra_ca_certificates[{stems[certificate.stem]}]; rename one"
            )
        stems[certificate.stem] = index
