"""The hub side of jupyterhub-deploy: what runs inside the hub's venv.

- config: the hub's configuration, applied from the data the deploy writes (hub.json);
- spawner, jobs, jobserver: users' servers as systemd units or Slurm jobs;
- oauth, names: OpenID Connect and GitHub logins with Unix names bound to one account each;
- people, oidc_discover, nltk_fetch, extract: tools the deploy runs with the venv's Python.
"""
