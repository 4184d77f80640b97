# sora-bot: `sora-bot run` (Discord and/or Slack, whichever has tokens, plus the HTTP server).
#
#   docker build -t sora-bot .
#   docker run -d --name sora-bot -p 8080:8080 -v sora-data:/data \
#     -e EVOLINK_API_KEY=… -e SLACK_BOT_TOKEN=… -e SLACK_SIGNING_SECRET=… \
#     -e PUBLIC_BASE_URL=https://bot.example.com sora-bot
#
# Everything the bot keeps lives in the /data volume: the SQLite store (jobs, ledger, the
# callback and media secrets — lose it and callback URLs and /media links change) and
# MEDIA_DIR. `docker stop` sends SIGTERM: the bot stops taking events, finishes in-flight
# acknowledgements, and exits 0; give it `--time 20` or more. Unfinished jobs resume on start.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY sora_bot ./sora_bot
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

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
