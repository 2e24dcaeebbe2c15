"""The replica set's pure parts: the count's one rule (params and the CLI flag), the upstream
block nginx gets, and the containers a recorded deployment runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.cli import build_parser
from pipelines.release.containers import DeployError
from pipelines.release.nginx import render_conf, upstream_servers
from pipelines.release.replicas import free_ports, running_replicas

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)


@pytest.mark.parametrize("flag,want", [("1", 1), ("3", 3), ("16", 16)])
def test_the_replicas_flag_takes_what_the_params_take(flag, want):
    args = build_parser().parse_args(["deploy", "--replicas", flag])
    assert args.replicas == want


@pytest.mark.parametrize("flag", ["0", "17", "two", "-1"])
def test_the_replicas_flag_refuses_what_the_params_refuse(flag, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["deploy", "--replicas", flag])
    assert "argument --replicas" in capsys.readouterr().err


def test_without_the_flag_the_params_decide(params):
    assert build_parser().parse_args(["deploy"]).replicas is None
    assert params.deploy.replicas == 1


def test_one_upstream_server_per_replica_with_passive_checks():
    lines = upstream_servers(["127.0.0.1:9001", "127.0.0.1:9002"]).splitlines()
    assert [line.split()[1] for line in lines] == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert all("max_fails=1 fail_timeout=5s;" in line for line in lines)
    with pytest.raises(DeployError, match="no upstream"):
        upstream_servers([])


def test_the_rendered_configuration_balances_least_conn_and_retries_no_sent_post(tmp_path):
    conf = render_conf(tmp_path, "127.0.0.1:8000", ["127.0.0.1:9001", "127.0.0.1:9002"], "7")
    directives = [line.split("#")[0].strip() for line in conf.splitlines()]
    assert "least_conn;" in directives
    assert "proxy_next_upstream error timeout;" in directives
    assert not any("non_idempotent" in d for d in directives)
    assert "${" not in conf
    assert "model version 7: 2 replica(s)" in conf
    if NGINX is None:
        pytest.skip("nginx not installed (scripts/install-podman.sh): syntax not checked")
    for d in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "nginx.conf").write_text(conf)
    proc = subprocess.run(
        [NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_a_recorded_deployment_names_its_replicas():
    assert running_replicas({"containers": ["m-v2-1", "m-v2-2"], "container": "m-v2-1"}) == [
        "m-v2-1",
        "m-v2-2",
    ]
    assert running_replicas({"container": "m-v1-9"}) == ["m-v1-9"]  # recorded before replicas
    assert running_replicas(None) == [] and running_replicas({}) == []


def test_free_ports_are_distinct():
    ports = free_ports(8)
    assert len(set(ports)) == 8
