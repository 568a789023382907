# medama: cookie-free web analytics as one Python zipapp.
#   docker build -t medama .
#   docker run -d -p 8080:8080 -v medama-data:/app/data medama
# See docs/deploy.md for HTTPS, upgrades and backups.

FROM python:3.12-slim AS build
WORKDIR /src
# The build stamps this into `medama version` and the X-Api-Commit header (no .git in the build context).
ARG COMMIT=docker
# ua-parser (pure Python) is bundled into the archive when installed at build time.
COPY requirements.txt ./
RUN pip install --no-cache-dir --root-user-action=ignore -r requirements.txt
COPY build_zipapp.py medama.py LICENSE ./
COPY medama_core ./medama_core
COPY dashboard_dist ./dashboard_dist
RUN python3 build_zipapp.py --commit "$COMMIT" -o /out/medama.pyz

FROM python:3.12-slim
# Platforms that mount volumes owned by root (Fly.io) build with --build-arg RUN_AS=root; their
# machines are single-tenant VMs. Everywhere else the server runs as the unprivileged user.
ARG RUN_AS=medama
# Optional speed-ups and argon2 (requirements.txt), plus cryptography for -autossl; all ship as wheels.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --root-user-action=ignore -r /tmp/requirements.txt cryptography==48.0.0 \
    && rm /tmp/requirements.txt \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin medama \
    && mkdir -p /app/data \
    && chown medama:medama /app/data
COPY --from=build /out/medama.pyz /app/medama.pyz

ENV PORT=8080 \
    APP_DATABASE_HOST=/app/data/me_meta.db \
    ANALYTICS_DATABASE_HOST=/app/data/me_analytics.db \
    LOGGER=json \
    PYTHONUNBUFFERED=1
USER $RUN_AS
WORKDIR /app
VOLUME /app/data
EXPOSE 8080
# /api/health over plain HTTP: on PORT, or with AUTO_SSL/TLS_CERT on HTTP_PORT, which answers it too.
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
    CMD ["python3", "-c", "import os, urllib.request as u; e = os.environ.get; p = e('HTTP_PORT', '80') if e('AUTO_SSL') or e('TLS_CERT') else e('PORT', '8080'); u.urlopen(f'http://127.0.0.1:{p}/api/health', timeout=2)"]
# SIGTERM (docker stop) drains in-flight requests and commits queued hits before exiting.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python3", "/app/medama.pyz"]
CMD ["start", "-env"]
