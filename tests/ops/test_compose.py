"""docker-compose.yml and deploy/nginx.conf, checked without a Docker engine: two bot replicas
with distinct REPLICA_IDs on the one PostgreSQL service, one shared media volume at MEDIA_DIR,
every replica behind the load balancer, and each replica's environment valid configuration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.infra.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
BOTS = {name: spec for name, spec in SERVICES.items() if spec.get("build") == "."}


def test_two_replicas_share_one_database_and_one_media_volume() -> None:
    assert len(BOTS) == 2
    ids = {spec["environment"]["REPLICA_ID"] for spec in BOTS.values()}
    assert len(ids) == 2, "each replica names itself"
    for spec in BOTS.values():
        env = {k: str(v) for k, v in spec["environment"].items()}
        url = urlsplit(env["DATABASE_URL"])
        assert url.scheme == "postgresql" and url.hostname in SERVICES
        database = SERVICES[str(url.hostname)]["environment"]
        assert (url.username, url.password, url.path.lstrip("/")) == (
            database["POSTGRES_USER"],
            database["POSTGRES_PASSWORD"],
            database["POSTGRES_DB"],
        )
        assert spec["depends_on"][url.hostname]["condition"] == "service_healthy"
        mounts = dict(v.split(":", 1) for v in spec["volumes"])
        assert mounts["media"] == env["MEDIA_DIR"] and "media" in COMPOSE["volumes"]
        # Under the image's /data, which its bot user owns (see the Dockerfile).
        assert env["MEDIA_DIR"].startswith("/data/")
        settings = Settings(
            _env_file=None,
            **{k.lower(): v for k, v in env.items()},
            evolink_api_key="sk-test",
            slack_bot_token="xoxb-test",
            slack_signing_secret="s" * 32,
        )
        assert settings.database_url.startswith("postgresql://") and settings.port == 8080


def test_the_load_balancer_sends_to_every_replica() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = set(re.findall(r"^\s*server (\S+?):(\d+)", conf, re.M))
    assert upstream == {(name, str(spec["environment"]["PORT"])) for name, spec in BOTS.items()}
    lb = next(spec for spec in SERVICES.values() if "nginx" in str(spec.get("image")))
    assert any("deploy/nginx.conf" in volume for volume in lb["volumes"])
    assert set(lb["depends_on"]) == set(BOTS)
