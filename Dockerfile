# sora-bot: `sora-bot run` (Discord and/or Slack, whichever has tokens, plus the HTTP server).
#
#   docker build -t sora-bot .
#   docker run -d --name sora-bot -p 8080:8080 -v sora-data:/data --env-file .env sora-bot
#   docker logs sora-bot        # a configuration problem is one line here, and exit code 2
#
# `.env` stays on the host (.dockerignore keeps it out of the image): `--env-file` passes it
# (or `-e NAME=…` one by one). Slack over HTTP needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET
# (Socket Mode: SLACK_APP_TOKEN instead), Discord DISCORD_TOKEN; all need EVOLINK_API_KEY.
# The image installs exactly the versions in requirements.lock (scripts/lock_requirements.py).
#
# Everything the bot keeps lives in the /data volume: the SQLite store (jobs, ledger, the
# callback and media secrets — lose it and callback URLs and /media links change) and
# MEDIA_DIR. `docker stop` sends SIGTERM: the bot stops taking events, finishes in-flight
# acknowledgements, and exits 0; give it `--time 20` or more. Unfinished jobs resume on start.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE requirements.lock ./
COPY bot ./bot
COPY adapters ./adapters
COPY sora_bot ./sora_bot
# PIP_CONSTRAINT pins the build backend too (it reaches pip's isolated build environment).
RUN python -m venv /opt/venv && PIP_CONSTRAINT=/src/requirements.lock /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_URL=sqlite:////data/sora-bot.db \
    MEDIA_DIR=/data/media
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin sora \
    && mkdir -p /data/media \
    && chown -R sora:sora /data
COPY --from=build /opt/venv /opt/venv
USER sora
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# urlopen raises on anything but 2xx (and on no answer): exit 1 = unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["sora-bot", "run"]
