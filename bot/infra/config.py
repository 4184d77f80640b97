"""Settings: exactly the contract's environment variables (plus `CATALOG_PATH` and
`DATABASE_POOL_SIZE`, `REPLICA_ID`, `LEASE_SECONDS`).

Read from the environment and from `.env` in the working directory (the environment wins).
Validation errors name the variable and say what would be accepted. Secrets are `SecretStr`,
so they never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import os
import secrets
import socket
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.errors import ConfigError
from bot.domain.workspace_settings import (
    JOBS_PER_USER,
    JOBS_PER_WORKSPACE,
    credits_value,
    period_value,
    timezone_value,
)
from bot.infra.store.engine import describe_postgres, engine_of, sqlite_path

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
NO_PLATFORM = (
    "No chat platform is configured: set DISCORD_TOKEN (Discord) and/or SLACK_BOT_TOKEN (one "
    "workspace) or SLACK_CLIENT_ID with SLACK_CLIENT_SECRET (installs by OAuth), with "
    "SLACK_SIGNING_SECRET or SLACK_APP_TOKEN (Slack). To see the bot work without any token, "
    "run: sora-bot demo"
)
#: The bot scopes slack-manifest.yml lists: what an OAuth install asks for (SLACK_SCOPES).
SLACK_DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "files:write",
    "files:read",
    "im:write",
    "users:read",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
)
#: The demo's own store unless DATABASE_URL is set (its console spend stays out of the real
#: ledger; `DATABASE_URL=sqlite:///sora-bot-demo.db sora-bot admin jobs` reads it).
DEMO_DATABASE_URL = "sqlite:///sora-bot-demo.db"
NO_EVOLINK_KEY = "EVOLINK_API_KEY is not set: the bot needs it to make videos (evolink.ai)."


def default_replica_id() -> str:
    """`<hostname>-<pid>-<4 random hex>`: unique per process start."""
    return f"{socket.gethostname() or 'host'}-{os.getpid()}-{secrets.token_hex(2)}"


def _csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    evolink_api_key: SecretStr | None = None
    evolink_base_url: str = "https://api.evolink.ai"
    # The Sora model EvoLink's price list offers (sora-2-preview as of 2026-10-10).
    default_model: str = "sora-2-preview"
    # How often EvoLink's public price list is read again (bot/services/prices.py).
    price_refresh_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    database_url: str = "sqlite:///sora-bot.db"
    # PostgreSQL's connection pool per process (SQLite has one connection).
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # This process among the replicas on one database (job leases name it; logs and /healthz
    # show it). Default: <hostname>-<pid>-<4 random hex>, new at every start.
    replica_id: str = Field(
        default_factory=lambda: default_replica_id(), min_length=1, max_length=100
    )
    # The takeover time: a dead replica's jobs are taken over by another within this many
    # seconds (leases are written for 5/6 of it and renewed every sixth: job_leases.py).
    lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str | None = None

    discord_token: SecretStr | None = None
    discord_api_base: str = "https://discord.com/api/v10"
    discord_guild_ids: Any = Field(default_factory=list)
    # Gateway shards across all replicas (each held by one replica, by lease:
    # adapters/discord/shards.py). None: Discord's recommendation (`GET /gateway/bot`).
    discord_shard_count: int | None = Field(default=None, ge=1, le=10000)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # Installation mode (adapters/slack/oauth.py): with both set, workspaces install the app
    # at /slack/install and each gets its own bot token; SLACK_BOT_TOKEN is then not used.
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_scopes: Any = Field(default_factory=lambda: list(SLACK_DEFAULT_SCOPES))
    # Team ids (T…) that may install; empty: any workspace.
    slack_install_allowed_teams: Any = Field(default_factory=list)

    user_credits_per_period: Decimal = Decimal(300)
    team_credits_per_period: Decimal = Decimal(0)
    budget_period: str = "month"
    budget_timezone: str = "UTC"
    admin_user_ids: Any = Field(default_factory=list)

    # Issue 5: concurrency limits, approvals, admin channels.
    # (The bounds and the budget rules are the per-workspace settings' own too.)
    max_jobs_per_user: int = Field(default=2, ge=JOBS_PER_USER[0], le=JOBS_PER_USER[1])
    max_jobs_per_workspace: int = Field(
        default=8, ge=JOBS_PER_WORKSPACE[0], le=JOBS_PER_WORKSPACE[1]
    )
    approval_ttl_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    # How often the EvoLink account's credits are sampled for `sora-bot admin reconcile`
    # (also at start and stop); 0: never.
    account_sample_minutes: int = Field(default=5, ge=0, le=24 * 60)
    discord_admin_channel: str | None = None
    slack_admin_channel: str | None = None

    # When set, GET /metrics needs "Bearer <token>"; without it a public server (PUBLIC_BASE_URL
    # on a host other than localhost) answers /metrics with 404 (`metrics_closed`).
    metrics_token: SecretStr | None = None

    media_dir: Path = Path("media")
    media_retention_days: int = Field(default=7, ge=1)
    # The web gallery (bot/gallery/): how long a link from `/sora gallery` may be opened (once),
    # and how long the session it starts lasts.
    gallery_link_minutes: int = Field(default=10, ge=1, le=24 * 60)
    gallery_session_hours: int = Field(default=12, ge=1, le=30 * 24)
    catalog_path: Path | None = None

    @field_validator(
        "evolink_api_key",
        "discord_token",
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_client_id",
        "slack_client_secret",
        "catalog_path",
        "discord_admin_channel",
        "slack_admin_channel",
        "metrics_token",
        "discord_shard_count",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `KEY=` in a .env file means "not set", not "set to nothing".
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("evolink_base_url", "discord_api_base", "slack_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("evolink_base_url")
    @classmethod
    def _no_v1(cls, value: str) -> str:
        value = value.rstrip("/")
        if value.endswith("/v1"):
            raise ValueError("is the API root without /v1 (e.g. https://api.evolink.ai)")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if not parts.netloc:
            raise ValueError(f"must be an absolute URL like https://bot.example.com, got {value!r}")
        if parts.scheme == "https":
            return value.strip().rstrip("/")
        if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
            return value.strip().rstrip("/")
        raise ValueError(
            f"must use https (plain http is accepted only for localhost/127.0.0.1), got {value!r}"
        )

    @field_validator("discord_guild_ids", mode="before")
    @classmethod
    def _guild_ids(cls, value: Any) -> list[int]:
        ids = _csv(value)
        bad = [item for item in ids if not item.isdigit()]
        if bad:
            raise ValueError(f"must be a comma list of numeric guild ids, got {bad[0]!r}")
        return [int(item) for item in ids]

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _admins(cls, value: Any) -> list[str]:
        ids = _csv(value)
        for item in ids:
            platform, _, user = item.partition(":")
            # Any platform name is accepted (discord, slack, console, and test platforms).
            if not user or not platform.isidentifier() or platform != platform.lower():
                raise ValueError(f"entries look like discord:1234 or slack:U0123, got {item!r}")
        return ids

    @field_validator("slack_scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> list[str]:
        scopes = _csv(value)
        if not scopes:
            return list(SLACK_DEFAULT_SCOPES)  # SLACK_SCOPES= (blank): the manifest's
        bad = [
            s for s in scopes if not s.replace(":", "").replace(".", "").replace("_", "").isalnum()
        ]
        if bad:
            raise ValueError(
                f"must be a comma list of Slack scopes like chat:write, got {bad[0]!r}"
            )
        return scopes

    @field_validator("slack_install_allowed_teams", mode="before")
    @classmethod
    def _teams(cls, value: Any) -> list[str]:
        teams = _csv(value)
        bad = [t for t in teams if not (t[:1] in ("T", "E") and t.isalnum() and t.isupper())]
        if bad:
            raise ValueError(
                f"must be a comma list of Slack team ids like T0123ABCD, got {bad[0]!r}"
            )
        return teams

    @field_validator("user_credits_per_period", "team_credits_per_period", mode="before")
    @classmethod
    def _credits(cls, value: Any) -> Decimal:
        return credits_value(value)

    @field_validator("budget_period")
    @classmethod
    def _period(cls, value: str) -> str:
        return period_value(value)

    @field_validator("budget_timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return timezone_value(value)

    @field_validator("replica_id", mode="before")
    @classmethod
    def _replica(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return default_replica_id()  # REPLICA_ID= (blank): the default
        return value.strip() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        engine_of(value)  # ValueError naming the two accepted forms
        return value

    # -- derived -------------------------------------------------------------------------

    @property
    def database_engine(self) -> str:
        """The engine DATABASE_URL names: "sqlite" or "postgresql"."""
        return engine_of(self.database_url)

    @property
    def database_path(self) -> str:
        """SQLite's file: `sqlite:///rel.db` → `rel.db`; `sqlite:////abs.db` → `/abs.db`;
        `sqlite://` → memory. (PostgreSQL has no file: "".)"""
        if self.database_engine != "sqlite":
            return ""
        return sqlite_path(self.database_url)

    @property
    def database_explicit(self) -> bool:
        """Was DATABASE_URL set (environment or `.env`), rather than left at its default?"""
        return "database_url" in self.model_fields_set

    @property
    def database_where(self) -> str:
        """The database in words for logs and errors: its absolute path, "in memory", or
        PostgreSQL's database, host and port (never the user or password)."""
        if self.database_engine == "postgresql":
            return describe_postgres(self.database_url)
        path = self.database_path
        return "an in-memory database" if path == ":memory:" else str(Path(path).absolute())

    def database_exists(self) -> bool:
        """Is there a database to open? (A PostgreSQL server is asked when it is opened.)"""
        if self.database_engine == "postgresql":
            return True
        return self.database_path == ":memory:" or Path(self.database_path).is_file()

    @property
    def timezone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.budget_timezone)

    @property
    def guild_ids(self) -> list[int]:
        return list(self.discord_guild_ids)

    @property
    def admin_ids(self) -> frozenset[tuple[str, str]]:
        """ADMIN_USER_IDS as (platform, user) pairs: the operator admins
        (bot/domain/permissions.py)."""
        return frozenset(
            (platform, user)
            for platform, _, user in (entry.partition(":") for entry in self.admin_user_ids)
        )

    def admin_users(self, platform: str) -> list[str]:
        """The user ids ADMIN_USER_IDS names on `platform`, sorted (whom to DM with requests)."""
        return sorted(user for where, user in self.admin_ids if where == platform)

    @property
    def slack_installs(self) -> bool:
        """Installation mode: SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are both set, so each
        workspace installs the app by OAuth and has its own bot token (no SLACK_BOT_TOKEN)."""
        return self.slack_client_id is not None and self.slack_client_secret is not None

    def slack_team_allowed(self, team_id: str | None) -> bool:
        """May workspace `team_id` install the app? (SLACK_INSTALL_ALLOWED_TEAMS; empty: any.)"""
        allowed = list(self.slack_install_allowed_teams)
        return not allowed or (team_id is not None and team_id in allowed)

    @property
    def slack_mode(self) -> str | None:
        """How Slack connects: ``"socket"`` (SLACK_APP_TOKEN), ``"http"`` (SLACK_SIGNING_SECRET,
        requests to /slack/events), or None when Slack is off or cannot start (`slack_problem`).
        Either credential works: one bot token, or installs (`slack_installs`)."""
        if self.slack_bot_token is None and not self.slack_installs:
            return None
        if self._slack_credentials_problem() is not None:
            return None
        if self.slack_app_token is not None:
            return "socket"
        return "http" if self.slack_signing_secret is not None else None

    @property
    def metrics_closed(self) -> bool:
        """True when `GET /metrics` must answer 404: the server is public (PUBLIC_BASE_URL on a
        host other than localhost) and METRICS_TOKEN is not set. Job counts and credit totals
        are not for whoever knows the host; set METRICS_TOKEN to scrape a public server."""
        if self.metrics_token is not None or self.public_base_url is None:
            return False
        return urlsplit(self.public_base_url).hostname not in LOCAL_HOSTS

    @property
    def slack_problem(self) -> str | None:
        """Why Slack cannot start as configured, in plain words; None when it can or is off.

        Slack needs one credential — a bot token, or the client id and secret of installs by
        OAuth, not both — and a way in: the signing secret (HTTP mode) or an app-level token
        (Socket Mode)."""
        credentials = self._slack_credentials_problem()
        if credentials is not None:
            return credentials
        if (self.slack_bot_token is None and not self.slack_installs) or self.slack_mode:
            return None
        which = "SLACK_BOT_TOKEN is" if self.slack_bot_token else "SLACK_CLIENT_ID/SECRET are"
        return (
            f"{which} set but SLACK_SIGNING_SECRET is not: Slack's HTTP mode needs it "
            "to verify requests (Basic Information → Signing Secret), or set SLACK_APP_TOKEN "
            "for Socket Mode."
        )

    def _slack_credentials_problem(self) -> str | None:
        if (self.slack_client_id is None) != (self.slack_client_secret is None):
            given, missing = (
                ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
                if self.slack_client_id is not None
                else ("SLACK_CLIENT_SECRET", "SLACK_CLIENT_ID")
            )
            return (
                f"{given} is set but {missing} is not: installs by OAuth need both (Basic "
                "Information → App Credentials)."
            )
        if self.slack_installs and self.slack_bot_token is not None:
            return (
                "Both SLACK_BOT_TOKEN and SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are set: choose one "
                "workspace by its bot token, or installs by OAuth (then unset SLACK_BOT_TOKEN)."
            )
        return None

    @property
    def run_problems(self) -> list[str]:
        """Every reason `sora-bot run` would refuse to start, in plain words, all at once
        (empty: it can start). `run` refuses on exactly these; `check` fails on each."""
        problems: list[str] = []
        if self.slack_problem is not None:
            problems.append(self.slack_problem)
        elif self.discord_token is None and self.slack_mode is None:
            problems.append(NO_PLATFORM)
        if self.evolink_api_key is None:
            problems.append(NO_EVOLINK_KEY)
        return problems


def load_settings(**overrides: Any) -> Settings:
    """Settings from env/.env (+ overrides), with validation errors turned into `ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "settings"
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{name} {msg}")
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(lines)) from None
